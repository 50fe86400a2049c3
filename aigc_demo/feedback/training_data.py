"""Training rows from every signal the app collects, each with its lineage.

A row says where it came from (``source``) and which stored records made it (``record_ids``),
so a model card can list exactly what a model was trained on. Sources, strongest first:

* ``correction``: a tester wrote a better answer in the rating widget → an SFT row, and
  correction ≻ the original answer as a preference pair;
* ``operator``: an operator resolved a handoff → an SFT row (the customer's question → the
  operator's answer), and operator ≻ the bot's reply as a pair;
* ``arena``: a decisive text vote → a pair (the winner ≻ the loser);
* ``thumbs``: 👍 and 👎 answers to the same prompt → pairs; an upvoted answer → an SFT row;
  every rated answer → a KTO row (👍 desirable, 👎 undesirable).

Rows keep the export formats (``feedback/export.py`` writes them: TRL's ``prompt`` /
``chosen`` / ``rejected``, ``prompt`` / ``completion`` / ``label``, ``messages``), plus
``source`` and ``record_ids``; the trainer reads the same files back (``--dataset``).
Filters are Insights' (tab, since, until, session, variant), applied to every stream.
"""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from aigc_demo.feedback.insights import filter_records, latest_ratings
from aigc_demo.tabs import tab_names

METHODS = ("dpo", "kto", "sft")
TEXT_TABS = tab_names(chat_data=True)
Row = dict[str, Any]


def completion(r: dict[str, Any]) -> str:
    return str((r.get("output") or {}).get("text") or "")


def prompt_messages(r: dict[str, Any]) -> list[dict[str, str]]:
    """The conversation up to the answer (system + user turns as the model saw them)."""
    messages = [
        {"role": m["role"], "content": str(m.get("content") or "")}
        for m in r.get("messages") or []
        if isinstance(m, dict) and m.get("role") in ("system", "user", "assistant")
    ]
    if messages and messages[-1]["role"] == "assistant" and messages[-1]["content"] == completion(r):
        messages = messages[:-1]
    return messages or [{"role": "user", "content": str(r.get("prompt") or "")}]


def prompt_text(r: dict[str, Any]) -> str:
    return str(r.get("prompt") or prompt_messages(r)[-1]["content"])


def _rated_text(ratings: Iterable[dict[str, Any]], filters: dict[str, Any]) -> list[dict[str, Any]]:
    """The latest rating of each text answer within the filters."""
    latest = latest_ratings(filter_records(ratings, **filters))
    return [r for r in latest if r.get("tab") in TEXT_TABS and completion(r)]


def _correction(r: dict[str, Any]) -> str:
    return str(r.get("correction") or "").strip()


def _pair(prompt: str, chosen: str, rejected: str, source: str, ids: Iterable[str]) -> Row:
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected, "source": source, "record_ids": list(ids)}


def thumb_pairs(rated: list[dict[str, Any]]) -> list[Row]:
    """👍 ≻ 👎 for every two answers to the same prompt on the same tab."""
    by_prompt: dict[tuple[str, str], dict[str, list[dict[str, Any]]]] = defaultdict(lambda: {"up": [], "down": []})
    for r in rated:
        by_prompt[(str(r.get("tab")), prompt_text(r))][str(r.get("rating"))].append(r)
    pairs = []
    for (_tab, prompt), answers in by_prompt.items():
        for up, down in itertools.product(answers["up"], answers["down"]):
            if completion(up) != completion(down):
                pairs.append(_pair(prompt, completion(up), completion(down), "thumbs", (up["id"], down["id"])))
    return pairs


def correction_pairs(rated: list[dict[str, Any]]) -> list[Row]:
    return [
        _pair(prompt_text(r), _correction(r), completion(r), "correction", (r["id"],))
        for r in rated
        if _correction(r) and _correction(r) != completion(r)
    ]


def arena_pairs(votes: Iterable[dict[str, Any]]) -> list[Row]:
    """Every decisive text vote: the winner's answer ≻ the loser's."""
    pairs = []
    for v in votes:
        if v.get("kind", "text") != "text" or v.get("choice") not in ("a", "b"):
            continue
        win, lose = (v["a"], v["b"]) if v["choice"] == "a" else (v["b"], v["a"])
        chosen, rejected = (win.get("output") or {}).get("text"), (lose.get("output") or {}).get("text")
        if v.get("prompt") and chosen and rejected:  # identical answers are dropped by the trainer
            pairs.append(_pair(str(v["prompt"]), chosen, rejected, "arena", (v.get("id", ""),)))
    return pairs


def operator_answers(
    handoffs: Iterable[dict[str, Any]], updates: Iterable[dict[str, Any]], events: Iterable[dict[str, Any]] = ()
) -> list[dict[str, Any]]:
    """Resolved handoffs: {question, answer (the operator's), bot (the bot's reply to that
    question, "" when it never answered it), ids}.

    The question is the one the operator resolved (stored with the update: the customer's last
    real question, "转人工" is none), else the transcript's last user turn. The bot's reply to it
    is the handed-off output (in the ``events`` stream) when it was the last turn, the
    transcript's next assistant turn when it was asked earlier, and none when the customer asked
    it only to the operator — an SFT row then, never a preference pair against an unrelated reply.
    """
    latest = {u.get("ticket"): u for u in updates}  # the latest update of a ticket wins (a reopened one is open)
    resolved = {t: u for t, u in latest.items() if u.get("status") == "resolved" and u.get("resolution")}
    handoffs = list(handoffs)
    wanted = {h.get("output_id") for h in handoffs}
    replies = {e.get("output_id"): completion(e) for e in events if e.get("output_id") in wanted}
    out = []
    for h in handoffs:
        update = resolved.get(h.get("ticket"))
        messages = [m for m in h.get("messages") or [] if isinstance(m, dict)]
        users = [i for i, m in enumerate(messages) if m.get("role") == "user"]
        if update is None or not users:
            continue
        last = str(messages[users[-1]].get("content") or "")
        question = str(update.get("question") or "").strip() or last
        if question == last.strip():
            bot = replies.get(h.get("output_id"), "")
        else:
            asked = [i for i in users if str(messages[i].get("content") or "").strip() == question]
            after = messages[asked[-1] + 1] if asked and asked[-1] + 1 < len(messages) else {}
            bot = str(after.get("content") or "") if after.get("role") == "assistant" else ""
        out.append(
            {
                "question": question,
                "answer": str(update["resolution"]).strip(),
                "bot": bot,
                "ids": [h.get("id", ""), update.get("id", "")],
            }
        )
    return out


def build(
    method: str,
    ratings: Iterable[dict[str, Any]] = (),
    *,
    votes: Iterable[dict[str, Any]] = (),
    handoffs: Iterable[dict[str, Any]] = (),
    handoff_updates: Iterable[dict[str, Any]] = (),
    events: Iterable[dict[str, Any]] = (),
    **filters: Any,
) -> list[Row]:
    """The rows for ``method`` (dpo, kto or sft) from every source, strongest first.

    ``events``: the generation log, where the bot's handed-off replies are (operator ≻ bot)."""
    rated = _rated_text(ratings, filters)
    tab = filters.get("tab")
    kept = {k: v for k, v in filters.items() if k != "tab"}
    battles = filter_records(votes, **kept) if tab in (None, "arena") else []
    solved = (
        operator_answers(filter_records(handoffs, **kept), handoff_updates, events) if tab in (None, "support") else []
    )
    if method == "dpo":
        operator = [
            _pair(o["question"], o["answer"], o["bot"], "operator", o["ids"])
            for o in solved
            if o["bot"] and o["bot"] != o["answer"]
        ]
        return [*correction_pairs(rated), *operator, *arena_pairs(battles), *thumb_pairs(rated)]
    if method == "sft":
        corrected = [
            {"messages": [*prompt_messages(r), {"role": "assistant", "content": _correction(r)}]}
            | {"source": "correction", "record_ids": [r["id"]]}
            for r in rated
            if _correction(r)
        ]
        operator = [
            {
                "messages": [{"role": "user", "content": o["question"]}, {"role": "assistant", "content": o["answer"]}],
                "source": "operator",
                "record_ids": o["ids"],
            }
            for o in solved
        ]
        upvoted = [
            {"messages": [*prompt_messages(r), {"role": "assistant", "content": completion(r)}]}
            | {"source": "thumbs", "record_ids": [r["id"]]}
            for r in rated
            if r.get("rating") == "up" and not _correction(r)
        ]
        return [*corrected, *operator, *upvoted]
    if method == "kto":
        return [
            {
                "prompt": prompt_text(r),
                "completion": completion(r),
                "label": r.get("rating") == "up",
                "source": "thumbs",
                "record_ids": [r["id"]],
            }
            for r in rated
        ]
    raise ValueError(f"method must be one of {', '.join(METHODS)}")


def sources(rows: list[Row]) -> dict[str, int]:
    """How many rows each source gave (for the model card and the "too little data" message)."""
    return dict(Counter(str(r.get("source") or "file") for r in rows))
