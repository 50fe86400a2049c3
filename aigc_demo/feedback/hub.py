"""Keep the feedback folder in a Hugging Face dataset with ``CommitScheduler``.

CommitScheduler uploads each file up to the size it saw when it listed the folder,
under ``scheduler.lock``; our store appends under that same lock, so an upload always
ends at a line boundary. Each process writes its own file (ids make duplicates
removable), and the scheduler's last push runs at exit — never on SIGKILL, so data
written after the last push waits on the local disk for the next start.

Without a token or network, sync is disabled with one clear log line; local data is
unaffected.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def start_hub_sync(
    repo_id: str,
    folder: Path,
    *,
    every_minutes: float = 5,
    private: bool = True,
    token: str | None = None,
    hf_api: Any = None,
) -> Any | None:
    """Start a CommitScheduler for ``folder``, or return None (and say why) if it cannot run."""
    if not repo_id:
        return None
    from huggingface_hub import CommitScheduler, get_token

    token = token or os.environ.get("HF_TOKEN") or get_token()
    if not token and hf_api is None:
        log.warning(
            "AIGC_HUB_DATASET=%s is set but no Hugging Face token was found (set HF_TOKEN or run "
            "`huggingface-cli login`): ratings stay in %s only.",
            repo_id,
            folder,
        )
        return None
    folder.mkdir(parents=True, exist_ok=True)
    try:
        scheduler = CommitScheduler(
            repo_id=repo_id,
            repo_type="dataset",
            folder_path=folder,
            path_in_repo="data",
            every=every_minutes,
            private=private,
            token=token,
            allow_patterns=["*.jsonl"],
            hf_api=hf_api,
        )
    except Exception as exc:  # noqa: BLE001 - offline, bad token, no permission: all the same here
        log.warning(
            "Hub sync to %s is disabled (%s: %s); ratings stay in %s only.",
            repo_id,
            type(exc).__name__,
            str(exc)[:200],
            folder,
        )
        return None
    log.info("Feedback in %s syncs to the Hub dataset %s every %g min", folder, repo_id, every_minutes)
    return scheduler
