"""What the support bot must not answer from the FAQ, and how it speaks when it does not.

Rules that come before retrieval, in this order:

* an explicit request for a person ("人工", "human") → handoff;
* instruction injection ("ignore previous instructions", "忽略之前的指令", "system prompt")
  → a polite refusal: the FAQ is the only thing the bot speaks from;
* a commitment only a person can make (a guarantee, a promise, compensation of N times)
  → handoff, because the FAQ cannot promise it;
* a question about the company's shares or finances → a polite refusal (no FAQ answers it);
* a second angry message → handoff; the first one is acknowledged before the answer;
* small talk ("谢谢", "ok") → a friendly reply; only emoji or punctuation → a request to
  say what the problem is (neither opens a ticket).

``before_retrieval`` applies them; the bot then checks for another company's brand (which
needs the KB's vocabulary) and searches.

Also here: splitting a message into its questions (multi-part), the tone of each reply
(zh / en), and the ticket number a handoff gives the customer.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from aigc_demo.locales import DEFAULT, LOCALES

# Patterns are matched against normalize()d text (simplified Chinese, lower case), and
# every repetition is bounded, so each runs in linear time on any input.
HUMAN_REQUEST = re.compile(
    r"\b(human|real person|representative|operator|someone real|live (chat|agent)|customer service rep\w*)\b"
    r"|\b(talk|speak|chat|connect|transfer)\b.{0,20}\b(agent|person|someone|staff)\b"
    r"|人工(?!智能)|真人(?!秀)|客服人员|转接(?!头)|找客服|转客服",
    re.IGNORECASE,
)
FRUSTRATION = re.compile(
    r"\b(useless|stupid|terrible|ridiculous|angry|furious|worst|scam|not helpful|doesn'?t help|"
    r"unacceptable|fed up|frustrat\w*|pissed|wtf|i hate (this|you|it)|hate (this|your))\b"
    r"|没用|垃圾|生气|气死|投诉|太差|什么破|这破|不满意|骗人|骗子|太坑|坑人|受够|离谱|无语|太过分|搞什么|要疯|崩溃",
    re.IGNORECASE,
)
# A demand to go over the bot's head: a manager, a regulator, the press, a lawyer. Whatever
# the KB says about complaints, this customer wants a person (how to complain stays a question).
ESCALATION = re.compile(
    r"\b(manager|supervisor|your boss|someone in charge|regulator\w*|lawyer|attorney|sue you|"
    r"(report|complain about) you|better business bureau|consumer (council|protection))\b"
    r"|经理|主管|领导|负责人|老板出来|12315|消协|消费者协会|工商局|市场监管|监管部门|曝光|媒体|律师|起诉|告你们|举报你们",
    re.IGNORECASE,
)
ANXIETY = re.compile(
    r"\b(urgent|asap|worried|anxious|panic\w*|help me|emergency|desperate)\b|急死|着急|急用|很急|好急|担心|"
    r"怎么办啊|慌|懵|快点|赶紧|救命",
    re.IGNORECASE,
)
INJECTION = re.compile(
    r"\b(ignore|disregard|forget|override|bypass)\b.{0,30}\b(instructions?|rules|prompts?|guidelines|guardrails)\b"
    r"|\b(system prompt|system override|developer mode|admin mode|jailbreak|dan mode)\b|\bpretend (to be|you are)\b"
    r"|\bfrom now on,? you are\b|\b(i am|i'm|we are|we're) authori[sz]ing you\b|\byou are (now )?authori[sz]ed to\b"
    r"|\byou are now (a|an|my|in) [a-z ]{0,20}(mode|assistant|bot|ai|model)\b"
    r"|(忽略|无视|忘掉|忘记|不要管|跳过).{0,12}(指令|指示|规则|设定|提示词|限制)|系统提示|提示词|越狱|开发者模式|调试模式|"
    r"管理员模式|【系统|从现在起你是|你现在是(一个|我的)|你现在是.{0,12}(员|管理|助手|机器人|系统|经理)|系统已?经?授权你(?!们)|已授权你(?!们)|"
    r"请扮演|扮演一个|"
    r"(所有|全部|全体)(用户|客户|工程师|员工|会员|师傅)的?.{0,6}(手机号|电话|密码|身份证|地址|信息|数据)",
    re.IGNORECASE,
)
COMMITMENT = re.compile(
    r"\b(can|will|could|do|would) you (guarantee|promise)\b|\b(guarantee|promise) (me|that|it will)\b"
    r"|\bcompensat\w*\b.{0,20}\b(\d{1,4}|ten|double|triple)\b|\b(\d{1,4}|ten|double|triple)\s{0,2}(x|times)\b.{0,20}\b(refund|compensat\w*)"
    r"|(能|可以|敢|能不能|可不可以|会不会|必须)(给我)?(保证|承诺|担保|打包票)|(保证|承诺|担保)(一定|百分百|100%|明天|今天|马上|立刻)"
    r"|打包票|(赔|补偿|赔偿)(我)?.{0,6}倍|(?<![\d十百千万两三四五六七八九])[\d十百千万两三四五六七八九]{1,6}倍(的)?(赔偿|补偿|赔)",
    re.IGNORECASE,
)
# Investment questions about the company: no FAQ answers them, and a support bot must not try.
FINANCE = re.compile(
    r"\b(stock|share) (price|symbol|code)\b|\b(ticker symbol|ipo|market cap\w*|shareholders?)\b|\bgo(ing)? public\b"
    r"|股价|股票|市值|上市公司|公司上市|股东|港股|美股|a股",
    re.IGNORECASE,
)
# Greetings, thanks and acknowledgements: a friendly word back, not a search and a ticket.
SMALL_TALK = re.compile(
    r"^\s{0,3}(hi|hello|hey|thanks|thank you|thx|ok|okay|cool|great|bye|goodbye|good (morning|afternoon|evening)"
    r"|你好|您好|哈喽|嗨|谢谢|多谢|感谢|好的|好|嗯|哦|噢|ok了|行|可以了|在吗|在不在|拜拜|再见)"
    r"[\s!！。.~～,，?？]{0,6}(了|啦|呀|哈|啊)?[\s!！。.~～?？]{0,6}$",
    re.IGNORECASE,
)
# Where a message splits into separate questions: question marks and semicolons, and the
# words customers use to add a second question.
_PART_BREAK = re.compile(
    r"(?<=[?？;；!！。])\s*|\s*(?:另外|还有就是|还有|顺便问一下|顺便问下|顺便问|以及|再问一下|再问下|此外)[，,：:\s]*"
    r"|\s+(?:also|and also|btw|by the way|plus)[,:]?\s+",
    re.IGNORECASE,
)
_LEADING_JOIN = re.compile(
    r"^(?:另外|还有|顺便问一下|顺便问下|顺便问|以及|此外|also|and also|and|btw|by the way|plus)(?:[，,：:\s]+|$)",
    re.IGNORECASE,
)
MIN_PART_CHARS = 4


def split_parts(message: str) -> list[str]:
    """The message's separate questions ("运费多少？退货要几天？" → two); short pieces are dropped."""
    message = re.sub(r"\s+", " ", message)  # one space per gap: the patterns stay linear on long blanks
    parts = [_LEADING_JOIN.sub("", p.strip(" ，,。.!！")) for p in _PART_BREAK.split(message) if p]
    return [p for p in parts if len(p) >= MIN_PART_CHARS]


def mood(message: str) -> str | None:
    """ "angry", "anxious" or None — to acknowledge the feeling before the answer."""
    if FRUSTRATION.search(message):
        return "angry"
    if ANXIETY.search(message):
        return "anxious"
    return None


def new_ticket() -> str:
    """A ticket number that is also the customer's key to the thread: T-YYMMDD-XXXX-XXXX-XXXX-XXXX,
    16 random characters (80 bits) in groups a person can read out; operators find a ticket
    by its first group."""
    alphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I
    groups = ("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))
    return f"T-{datetime.now(UTC):%y%m%d}-" + "-".join(groups)


def phrases(key: str) -> dict[str, str]:
    """One catalogue message in every language (aigc_demo/locales), as the rules pick by ``lang``."""
    return {lang: messages.get(key, LOCALES[DEFAULT][key]) for lang, messages in LOCALES.items()}


GREETING = phrases("support_greeting")
# Said before an entry quoted in the other language (only an English entry answers a Chinese
# question, or the reverse): the customer knows why, instead of meeting a foreign text unannounced.
OTHER_LANGUAGE = phrases("support_other_language")
ACKNOWLEDGE = {"angry": phrases("support_ack_angry"), "anxious": phrases("support_ack_anxious")}


@dataclass(frozen=True)
class HandoffReason:
    """Why the bot hands a conversation to a person: what the customer reads (catalogue key
    ``handoff_message_<key>``; ``{names}`` is filled with what the KB lacks), what the team
    reads (``handoff_reason_<key>``: Insights, tickets, reports), and whether it shows a gap in
    the knowledge base (the list the support lead fills). Adding a reason is one entry in
    ``HANDOFF_REASONS`` and its two messages in each locale."""

    key: str
    knowledge_gap: bool = False

    @property
    def message(self) -> dict[str, str]:
        return phrases(f"handoff_message_{self.key}")

    @property
    def label(self) -> dict[str, str]:
        return phrases(f"handoff_reason_{self.key}")


HANDOFF_REASONS: dict[str, HandoffReason] = {
    r.key: r
    for r in [
        HandoffReason("low_confidence", knowledge_gap=True),
        HandoffReason("requested"),
        HandoffReason("frustration"),
        HandoffReason("commitment"),
        HandoffReason("not_covered", knowledge_gap=True),
        HandoffReason("other_brand"),
    ]
}
HANDOFF = {key: reason.message for key, reason in HANDOFF_REASONS.items()}
TICKET = phrases("support_ticket")
TICKET_FAILED = phrases("support_ticket_failed")
WITH_OPERATOR = phrases("support_with_operator")  # said once, on the first message to the operators
DEFAULT_CONTACT = phrases("support_default_contact")
REFUSAL = phrases("support_refusal")
OFF_TOPIC = phrases("support_off_topic")
SMALL_TALK_REPLY = phrases("support_small_talk_reply")
# Replies of the scope guard (scope.py): a message nearer a general request than any entry.
SCOPE_REPLY = {"small-talk": phrases("support_scope_small_talk"), "off-topic": phrases("support_scope_off_topic")}
NOTHING_TO_SEARCH = phrases("support_nothing_to_search")
UNANSWERED_PART = phrases("support_unanswered_part")


_ANY_WORD = re.compile(r"[A-Za-z0-9\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


@dataclass(frozen=True)
class Rule:
    """What a rule decided: a handoff (its reason), or a reply that is not from the FAQ."""

    handoff: str = ""
    answer: str = ""
    mode: str = ""
    refused: bool = False


def before_retrieval(text: str, folded: str, earlier: list[str], lang: str) -> Rule | None:
    """The first rule that applies to a message (``folded`` = normalize(text); ``earlier``:
    the customer's earlier messages, normalised), or None: search the knowledge base."""
    if HUMAN_REQUEST.search(folded):
        return Rule(handoff="requested")
    if INJECTION.search(folded):
        return Rule(answer=REFUSAL[lang], mode="refused", refused=True)
    if FINANCE.search(folded):
        return Rule(answer=OFF_TOPIC[lang], mode="refused", refused=True)
    if mood(folded) == "angry" and any(FRUSTRATION.search(m) for m in earlier):
        return Rule(handoff="frustration")
    if ESCALATION.search(folded):
        return Rule(handoff="frustration")
    if COMMITMENT.search(folded):
        return Rule(handoff="commitment")
    if SMALL_TALK.search(folded):
        return Rule(answer=SMALL_TALK_REPLY[lang], mode="small-talk")
    if not _ANY_WORD.search(text):
        return Rule(answer=NOTHING_TO_SEARCH[lang], mode="clarify")
    return None
