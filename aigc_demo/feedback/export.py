"""Training-ready exports from ratings: SFT, DPO and KTO (TRL formats), CSV and Parquet.

All exports use the latest rating of each output (and image), after the same filters as
Insights (tab, since, until, session, variant), so an export holds what Insights counts.
Text-producing tabs (text, support) feed the training formats; CSV / Parquet hold every
rating, flattened, images included.

* ``sft``: ``{"messages": [...]}`` chat rows: corrections, operators' answers, upvoted outputs;
* ``dpo``: ``{"prompt", "chosen", "rejected"}``: correction ≻ original, operator ≻ bot, Arena
  winner ≻ loser, 👍 ≻ 👎 on the same prompt;
* ``kto``: ``{"prompt", "completion", "label"}`` with a boolean label;

the three training formats come from ``feedback/training_data.py`` with each row's ``source``
and ``record_ids``, and ``python -m aigc_demo train --dataset`` reads them back;
* ``csv`` / ``parquet``: one row per rating.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aigc_demo.errors import AigcError, InvalidInput
from aigc_demo.feedback import training_data
from aigc_demo.feedback.arena import vote_rows
from aigc_demo.feedback.insights import filter_records, latest_ratings

FORMATS = ("sft", "dpo", "kto", "csv", "parquet")
TEXT_TABS = training_data.TEXT_TABS


def select(records: Iterable[dict[str, Any]], **filters: Any) -> list[dict[str, Any]]:
    """The latest rating of each output among the records that pass Insights' filters."""
    return latest_ratings(filter_records(records, **filters))


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
    records: Iterable[dict[str, Any]],
    fmt: str,
    out: Path,
    *,
    votes: Iterable[dict[str, Any]] = (),
    handoffs: Iterable[dict[str, Any]] = (),
    handoff_updates: Iterable[dict[str, Any]] = (),
    events: Iterable[dict[str, Any]] = (),
    **filters: Any,
) -> int:
    """Write ``fmt`` to ``out``; return the number of rows written. ``filters``: tab, since,
    until, session, variant (feedback.insights.filter_records), applied to ratings and Arena
    ``votes`` alike (``tab="arena"`` keeps only votes).

    Arena votes: each decisive text vote is one DPO pair; CSV / Parquet have one row per
    vote, ties and both-bad included. Resolved ``handoffs`` give SFT rows, and DPO pairs
    against the bot's reply found in ``events``.
    """
    if fmt not in FORMATS:
        raise InvalidInput(f"format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    rows = select(records, **filters)
    battles = filter_records(votes, **filters)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt in training_data.METHODS:
        data = training_data.build(
            fmt, records, votes=votes, handoffs=handoffs, handoff_updates=handoff_updates, events=events, **filters
        )
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
