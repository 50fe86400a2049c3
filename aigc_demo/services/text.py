"""Text generation: scenario presets, prompt building, streaming with stats.

``TextService.stream`` yields :class:`TextUpdate` snapshots (full text so far, so a UI
can render any of them) and ends with one that carries the result dict that the
``/generate_text`` API returns; the same generator feeds the UI, so both behave alike.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from aigc_demo.config import Settings
from aigc_demo.errors import InvalidInput, Items
from aigc_demo.feedback.schema import GeneratedOutput
from aigc_demo.feedback.service import FeedbackService
from aigc_demo.models.base import GenerationStats, TextRequest
from aigc_demo.models.registry import ModelRegistry
from aigc_demo.models.streaming import REPLACEMENT
from aigc_demo.services.lang import contains_cjk
from aigc_demo.services.loops import LoopGuard
from aigc_demo.services.validation import choice, clean_history, clean_text, number, resolve_seed
from aigc_demo.variants import apply, assign


@dataclass(frozen=True)
class Preset:
    """A scenario: prompt templates (``{input}`` is the user's text) in English and Chinese,
    an optional system prompt, and the sampling settings that suit it. Its name on the page
    is the i18n key ``preset_<key>``."""

    key: str
    template_en: str
    template_zh: str
    system_en: str = ""
    system_zh: str = ""
    temperature: float = 0.7
    max_new_tokens: int = 256
    top_p: float = 0.95
    repeat_penalty: float = 1.1

    def render(self, text: str) -> tuple[str, str]:
        """(user message, system prompt) in the language of the user's text."""
        if contains_cjk(text):
            return self.template_zh.format(input=text), self.system_zh
        return self.template_en.format(input=text), self.system_en


# Written for small instruct models (the offline default is Qwen2.5-Coder-0.5B): the
# instruction is in the language of the answer wanted (a Chinese instruction for an
# English-to-Chinese translation too — with an English one the model answered in English),
# the shape is spelled out (how many lines, how long), and every preset has a system prompt:
# without one the Qwen GGUF's own English prompt applies and it introduces itself in
# English. Chosen on the tune split of bench/data/text_quality.jsonl; see bench/RESULTS.md.
ZH_HELPER = "你是一个乐于助人的 AI 助手。请用简体中文回答，内容具体、准确、有条理，不要重复同样的句子。"
EN_HELPER = "You are a helpful AI assistant. Answer in clear, specific English without repeating yourself."

PRESETS: dict[str, Preset] = {
    p.key: p
    for p in [
        Preset("free", "{input}", "{input}", system_en=EN_HELPER, system_zh=ZH_HELPER),
        Preset(
            "marketing",
            "Write short, vivid marketing copy (about 80 words) for this product:\n\n{input}",
            "为下面的产品写一段生动的营销文案，约 150 字，突出卖点和使用场景：\n\n{input}",
            system_en="You are an expert copywriter.",
            system_zh="你是一名资深中文广告文案，文字有画面感、有感染力，用简体中文写作。",
            temperature=0.8,
        ),
        Preset(
            "product",
            "Write a clear product description (3-5 sentences, key features first) for:\n\n{input}",
            "为下面的商品写一段清晰的商品详情描述（3-5 句，先写核心卖点，只写给出的信息）：\n\n{input}",
            system_en="You write accurate, friendly e-commerce product descriptions.",
            system_zh="你擅长撰写准确、亲切的中文电商商品描述。",
        ),
        Preset(
            "summary",
            "Summarize the following text in 3 bullet points, keeping its numbers exact:\n\n{input}",
            "用 3 个要点总结下面的文字，每个要点一行，以“- ”开头，原文的数字照抄：\n\n{input}",
            system_en="You are a careful editor: you summarise only what the text says.",
            system_zh="你是一名严谨的中文编辑，只根据原文总结，不添加原文没有的信息。",
            temperature=0.3,
        ),
        Preset(
            "translate",
            "把下面的英文翻译成简体中文，只输出中文译文：\n\n{input}",
            "Translate the following Chinese text into English. Output only the English translation.\n\n{input}",
            system_en="你是一名专业翻译，译文准确、通顺。",
            system_zh="You are a professional Chinese-to-English translator.",
            temperature=0.2,
        ),
        Preset(
            "email",
            "You received the email below. Write your polite, concise reply to it, "
            "answering each of its questions:\n\n{input}",
            "你是收信人。请以收信人的身份给下面这封来信写回复：礼貌、简洁，逐一回应对方的问题或请求，直接写回复正文。\n\n来信：\n{input}",
            system_en="You write polite, clear business emails.",
            system_zh="你擅长写得体、简洁的中文商务邮件。",
        ),
        Preset(
            "social",
            "Write an engaging social media post (under 60 words, 2-3 hashtags) about:\n\n{input}",
            "写一条吸引人的朋友圈/微博帖子（100 字以内，结尾带 2-3 个 #话题#），主题：\n\n{input}",
            system_en="You write lively social media posts.",
            system_zh="你擅长写活泼、真实的中文社交媒体文案。",
            temperature=0.9,
            max_new_tokens=160,
        ),
        Preset(
            "slogan",
            "Write 5 different catchy slogans, numbered 1-5, one per line, under 10 words each, for: {input}",
            "为以下内容写 5 条不同的中文宣传口号，编号 1-5，每条一行、不超过 16 个字，只输出口号：{input}",
            system_en="You are an advertising copywriter.",
            system_zh="你是一名广告文案，擅长写简短有力、朗朗上口的中文口号。",
            temperature=0.9,
            max_new_tokens=128,
        ),
        Preset(
            "poem",
            "Write a short poem (8 lines or fewer) about: {input}",
            "以此为题写一首 8 行以内的中文短诗，每行不同，不要解释：{input}",
            system_en="You are a poet.",
            system_zh="你是一位中文诗人。",
            temperature=0.9,
            max_new_tokens=200,
        ),
    ]
}

MODES = ("chat", "continue")
MAX_HISTORY_MESSAGES = 20  # ten exchanges; the engines also drop the oldest tokens past their window


@dataclass
class TextUpdate:
    text: str
    stats: GenerationStats
    done: bool = False
    result: dict[str, Any] | None = None


class TextService:
    def __init__(self, registry: ModelRegistry, feedback: FeedbackService, settings: Settings) -> None:
        self.registry = registry
        self.feedback = feedback
        self.settings = settings

    def build_request(
        self,
        prompt: object,
        *,
        preset: str = "free",
        max_new_tokens: object = None,
        temperature: object = None,
        top_p: object = None,
        seed: object = -1,
        stop: object = "",
        system: object = "",
        mode: object = "chat",
        history: object = None,
    ) -> tuple[TextRequest, str]:
        """Validate everything before any model work; return the request and the preset key.

        ``mode="chat"`` wraps the text in the preset's template and the model's chat
        template, after the earlier turns of the conversation (``history``: user and
        assistant messages as they were shown); ``mode="continue"`` feeds the raw text to the
        model to continue (what a base model such as Gemma-3-270M is for) and takes no history.
        Length, temperature and top-p left out (None or "") are the preset's, as the page's
        sliders are when a preset is picked.
        """
        text = clean_text(prompt, name="prompt", max_chars=self.settings.max_prompt_chars)
        preset_key = choice(preset, name="preset", default="free")
        if preset_key not in PRESETS:
            raise InvalidInput("unknown_preset", name=repr(preset_key[:40]), choices=Items(PRESETS))
        chosen = PRESETS[preset_key]

        def given(value: object, default: float) -> object:
            return default if value is None or value == "" else value

        cap = self.settings.max_new_tokens_cap
        request = TextRequest(
            max_new_tokens=int(
                number(
                    given(max_new_tokens, min(chosen.max_new_tokens, cap)),
                    name="max_new_tokens",
                    lo=1,
                    hi=cap,
                    integer=True,
                )
            ),
            temperature=float(number(given(temperature, chosen.temperature), name="temperature", lo=0.0, hi=2.0)),
            top_p=float(number(given(top_p, chosen.top_p), name="top_p", lo=0.01, hi=1.0)),
            seed=resolve_seed(seed),
            stop=_parse_stop(stop),
            repeat_penalty=chosen.repeat_penalty if mode != "continue" else 1.0,
        )
        if mode not in MODES:
            raise InvalidInput("bad_mode", got=repr(str(mode)[:20]))
        system_text = clean_text(system, name="system prompt", max_chars=self.settings.max_prompt_chars, required=False)
        turns = clean_history(
            history, max_messages=MAX_HISTORY_MESSAGES, max_item_chars=4 * self.settings.max_prompt_chars
        )
        if mode == "continue":
            if turns:
                raise InvalidInput("history_in_continue")
            request.prompt, request.messages = text, None
            return request, preset_key
        user, preset_system = chosen.render(text)
        system_text = system_text or preset_system
        request.messages = [
            *([{"role": "system", "content": system_text}] if system_text else []),
            *turns,
            {"role": "user", "content": user},
        ]
        request.prompt = user
        return request, preset_key

    def stream(
        self,
        prompt: object,
        *,
        session_id: str = "",
        should_stop: Callable[[], bool] | None = None,
        continue_output_id: str | None = None,
        tab: str = "text",
        **options: Any,
    ) -> Iterator[TextUpdate]:
        """Stream updates; ``should_stop()`` ends generation early but still returns a
        result, so a stopped answer can be read, copied and rated like any other.

        ``continue_output_id`` names an earlier answer (usually one cut at the length limit):
        the model writes on from its last word, with that answer's prompt, history and
        settings (``prompt`` is not needed; ``max_new_tokens`` and ``seed`` may be given). The
        new output holds the whole text, so a rating covers what the reader saw.

        ``tab="arena"``: an Arena contestant's answer — its settings are the contestant's own,
        so no A/B variant overrides them, and the record says where it was made.
        """
        if continue_output_id:
            request, params, model_id, variant_name, prefix = self._continuation(continue_output_id, options)
            record_prompt: str = params.pop("prompt")
        else:
            variant = assign(self.settings.variant_table, "text", session_id) if tab == "text" else None
            options = apply(
                variant, options, ("system", "preset", "model", "temperature", "top_p", "max_new_tokens", "mode")
            )
            model_id = choice(options.pop("model", None), name="model", default="") or None
            request, preset_key = self.build_request(prompt, **options)
            params = {
                "preset": preset_key,
                "mode": options.get("mode") or "chat",
                "system": (options.get("system") or "").strip() or None,
            }
            variant_name, prefix, record_prompt = (variant.name if variant else None), "", str(prompt).strip()
        model = self.registry.get("text", model_id)
        stats = GenerationStats()
        started = time.perf_counter()
        text, written, guard = prefix, "", LoopGuard()
        chunks = model.stream(request, stats)
        try:
            for chunk in chunks:
                written += chunk.replace(REPLACEMENT, "")  # engines drop it already; records must never hold it
                loop_at = guard.check(written) if self.settings.loop_guard else None
                if loop_at is not None:  # the model began repeating itself: keep what came before
                    text, stats.finish_reason = prefix + written[:loop_at].rstrip(), "repetition"
                    break
                text = prefix + written
                yield TextUpdate(text=text, stats=stats)
                if should_stop is not None and should_stop():
                    break
        finally:
            chunks.close()  # stops the model's worker at once if we left early
        if should_stop is not None and should_stop() and stats.finish_reason != "repetition":
            stats.finish_reason = "stopped"
        latency_ms = (time.perf_counter() - started) * 1000
        params.update(
            max_new_tokens=request.max_new_tokens,
            temperature=request.temperature,
            top_p=request.top_p,
            seed=request.seed,
            stop=request.stop,
            repeat_penalty=request.repeat_penalty,
        )
        model_info = self.registry.info("text", model_id)
        output = GeneratedOutput(
            tab=tab,
            model=model_info,
            params=params,
            prompt=record_prompt,
            messages=request.messages,
            output={"text": text, "finish_reason": stats.finish_reason},
            latency_ms=round(latency_ms, 1),
            session_id=session_id,
            variant=variant_name,
        )
        self.feedback.register(output)
        result = {
            "output_id": output.output_id,
            "text": text,
            "usage": {"prompt_tokens": stats.prompt_tokens, "completion_tokens": stats.completion_tokens},
            "timings": {
                "ttft_ms": round(stats.ttft_ms, 1) if stats.ttft_ms is not None else None,
                "total_ms": round(stats.total_ms, 1),
                "tokens_per_s": round(stats.tokens_per_s, 2),
            },
            "finish_reason": stats.finish_reason,
            "seed": request.seed,
            "model": model_info["id"],
            "variant": variant_name,
            "continued_from": continue_output_id or None,
        }
        yield TextUpdate(text=text, stats=stats, done=True, result=result)

    def _continuation(
        self, output_id: str, options: dict[str, Any]
    ) -> tuple[TextRequest, dict[str, Any], str | None, str | None, str]:
        """The request that continues an earlier text answer from its last word.

        Chat answers go back as the final assistant message, which every engine continues
        instead of starting a new turn (the contract in ``models/base.py``); raw
        continuations just get longer.
        """
        earlier = self.feedback.find_output(output_id) if isinstance(output_id, str) else None
        if earlier is None or earlier.tab != "text":
            raise InvalidInput("nothing_to_continue")
        p = earlier.params
        written = str(earlier.output.get("text") or "")
        request = TextRequest(
            max_new_tokens=int(
                number(
                    options.get("max_new_tokens", p.get("max_new_tokens", 256)),
                    name="max_new_tokens",
                    lo=1,
                    hi=self.settings.max_new_tokens_cap,
                    integer=True,
                )
            ),
            temperature=float(p.get("temperature", 0.7)),
            top_p=float(p.get("top_p", 0.95)),
            seed=resolve_seed(options.get("seed", -1)),
            stop=list(p.get("stop") or []),
            repeat_penalty=float(p.get("repeat_penalty", 1.0)),
        )
        if earlier.messages:
            request.messages = [*earlier.messages, {"role": "assistant", "content": written}]
            if request.messages[-2]["role"] == "assistant":  # continuing a continuation: one final message
                request.messages = [*earlier.messages[:-1], {"role": "assistant", "content": written}]
        else:
            request.prompt = (earlier.prompt or "") + written
        params = {
            "preset": p.get("preset", "free"),
            "mode": p.get("mode", "chat"),
            "system": p.get("system"),
            "continued_from": output_id,
            "prompt": earlier.prompt or "",
        }
        return request, params, earlier.model.get("id"), earlier.variant, written

    def generate(self, prompt: object, **options: Any) -> dict[str, Any]:
        result: dict[str, Any] | None = None
        for update in self.stream(prompt, **options):
            result = update.result
        assert result is not None
        return result


def _parse_stop(stop: object) -> list[str]:
    if stop is None or stop == "":
        return []
    if isinstance(stop, str):
        items = [s for s in stop.split("|")]
    elif isinstance(stop, (list, tuple)):
        items = [str(s) for s in stop]
    else:
        raise InvalidInput("stop_not_text", got=type(stop).__name__)
    items = [s.replace("\\n", "\n") for s in items if s.strip()]
    if len(items) > 8 or any(len(s) > 100 for s in items):
        raise InvalidInput("stop_too_many")
    return items
