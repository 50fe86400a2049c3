"""Training-ready exports from ratings: SFT, DPO and KTO (TRL formats), CSV and Parquet.

All exports use the latest rating of each output (and image), after the same filters as
Insights (tab, since, until, session, variant), so an export holds what Insights counts.
Text-producing tabs (text, support) feed the training formats; CSV / Parquet hold every
rating, flattened, images included.

* ``sft``: ``{"messages": [...]}`` chat rows from upvoted outputs;
* ``dpo``: ``{"prompt", "chosen", "rejected"}`` from the same prompt rated up and down;
* ``kto``: ``{"prompt", "completion", "label"}`` with a boolean label;
* ``csv`` / ``parquet``: one row per rating.
"""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aigc_demo.errors import AigcError, InvalidInput
from aigc_demo.feedback.arena import dpo_pairs, vote_rows
from aigc_demo.feedback.insights import filter_records, latest_ratings
from aigc_demo.tabs import tab_names

FORMATS = ("sft", "dpo", "kto", "csv", "parquet")
TEXT_TABS = tab_names(chat_data=True)


def select(records: Iterable[dict[str, Any]], **filters: Any) -> list[dict[str, Any]]:
    """The latest rating of each output among the records that pass Insights' filters."""
    return latest_ratings(filter_records(records, **filters))


def _completion(r: dict[str, Any]) -> str:
    return str((r.get("output") or {}).get("text") or "")


def _prompt_messages(r: dict[str, Any]) -> list[dict[str, str]]:
    """The conversation up to the answer (system + user turns as the model saw them)."""
    messages = [m for m in r.get("messages") or [] if m.get("role") in ("system", "user", "assistant")]
    if messages and messages[-1].get("role") == "assistant" and messages[-1].get("content") == _completion(r):
        messages = messages[:-1]
    return messages or [{"role": "user", "content": str(r.get("prompt") or "")}]


def _prompt_text(r: dict[str, Any]) -> str:
    return str(r.get("prompt") or _prompt_messages(r)[-1]["content"])


def to_sft(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"messages": [*_prompt_messages(r), {"role": "assistant", "content": _completion(r)}]}
        for r in rows
        if r.get("tab") in TEXT_TABS and r.get("rating") == "up" and _completion(r)
    ]


def to_dpo(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_prompt: dict[tuple[str, str], dict[str, list[str]]] = defaultdict(lambda: {"up": [], "down": []})
    for r in rows:
        if r.get("tab") in TEXT_TABS and _completion(r):
            by_prompt[(str(r.get("tab")), _prompt_text(r))][str(r.get("rating"))].append(_completion(r))
    pairs = []
    for (_tab, prompt), answers in by_prompt.items():
        for chosen, rejected in itertools.product(dict.fromkeys(answers["up"]), dict.fromkeys(answers["down"])):
            if chosen != rejected:
                pairs.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    return pairs


def to_kto(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {"prompt": _prompt_text(r), "completion": _completion(r), "label": r.get("rating") == "up"}
        for r in rows
        if r.get("tab") in TEXT_TABS and _completion(r)
    ]


def flatten(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One flat row per rating; nested values become dotted columns or JSON text."""
    flat = []
    for r in rows:
        row: dict[str, Any] = {}
        for key, value in r.items():
            if isinstance(value, dict):
                for sub, v in value.items():
                    row[f"{key}.{sub}"] = (
                        v if isinstance(v, (str, int, float, bool, type(None))) else json.dumps(v, ensure_ascii=False)
                    )
            elif isinstance(value, list):
                row[key] = json.dumps(value, ensure_ascii=False)
            else:
                row[key] = value
        row.setdefault("session_id", "")  # always a column: exports are filtered and joined by session
        flat.append(row)
    return flat


def export(
    records: Iterable[dict[str, Any]], fmt: str, out: Path, *, votes: Iterable[dict[str, Any]] = (), **filters: Any
) -> int:
    """Write ``fmt`` to ``out``; return the number of rows written. ``filters``: tab, since,
    until, session, variant (feedback.insights.filter_records), applied to ratings and Arena
    ``votes`` alike (``tab="arena"`` keeps only votes).

    Arena votes: each decisive text vote is one DPO pair; CSV / Parquet have one row per
    vote, ties and both-bad included. SFT and KTO are built from ratings only.
    """
    if fmt not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    rows = select(records, **filters)
    battles = filter_records(votes, **filters)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt in ("sft", "dpo", "kto"):
        data = {"sft": to_sft, "dpo": to_dpo, "kto": to_kto}[fmt](rows)
        if fmt == "dpo":
            data += [
                {"prompt": p["prompt"], "chosen": p["chosen"], "rejected": p["rejected"]} for p in dpo_pairs(battles)
            ]
        with open(out, "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(row, ensure_ascii=False) + "\n" for row in data)
        return len(data)
    import pandas as pd

    frame = pd.DataFrame(flatten(rows) + vote_rows(battles))
    if fmt == "csv":
        frame.map(spreadsheet_safe).to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    return len(frame)


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """OWASP's rule against CSV injection: a text cell that a spreadsheet would run as a
    formula (it starts with = + - @, tab or CR) gets a leading apostrophe, so Excel, LibreOffice
    and Sheets show it as text. Numbers stay numbers; Parquet and JSONL keep the text as is."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def push_to_hub(path: Path, repo_id: str, *, token: str | None = None) -> str:
    """Upload an export to a Hub dataset repo; a clear error offline or without a token."""
    import os

    from huggingface_hub import HfApi, get_token

    token = token or os.environ.get("HF_TOKEN") or get_token()
    if not token:
        raise AigcError("No Hugging Face token: set HF_TOKEN (or run `huggingface-cli login`) to push exports.")
    api = HfApi(token=token)
    try:
        api.create_repo(repo_id, repo_type="dataset", private=True, exist_ok=True)
        info = api.upload_file(
            path_or_fileobj=str(path), path_in_repo=Path(path).name, repo_id=repo_id, repo_type="dataset"
        )
    except Exception as exc:
        raise AigcError(
            f"Could not push to the Hub dataset {repo_id} ({type(exc).__name__}: {str(exc)[:160]})."
        ) from exc
    return str(getattr(info, "commit_url", info))
