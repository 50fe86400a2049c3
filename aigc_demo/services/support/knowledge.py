"""Where the support knowledge base comes from, and how an admin changes it.

The served KB is the configured folder (``AIGC_SUPPORT_KB``, the bundled store FAQ by
default) plus uploaded files (``DATA_DIR/kb``) — or the uploads alone after an upload
that replaces — plus the answers operators saved from resolved handoffs
(``DATA_DIR/kb-resolved``). Uploads are checked in a staging folder first: nothing
changes unless at least one entry loads.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from pathlib import Path

from aigc_demo.config import Settings
from aigc_demo.errors import InvalidInput, Items, Msg
from aigc_demo.services.support.kb import SUPPORTED, knowledge_files, load_kb

MAX_UPLOAD_BYTES = 5 * 1024 * 1024
REPLACE_MARKER = ".replace"


class KnowledgeFiles:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.uploads_dir = Path(settings.data_dir) / "kb"
        self.resolved_dir = Path(settings.data_dir) / "kb-resolved"

    def dirs(self) -> list[Path]:
        """The folders the index loads, in order."""
        uploads = knowledge_files(self.uploads_dir) if self.uploads_dir.is_dir() else []
        replace = (self.uploads_dir / REPLACE_MARKER).exists()
        dirs = (
            [self.uploads_dir]
            if uploads and replace
            else [Path(self.settings.support_kb)] + ([self.uploads_dir] if uploads else [])
        )
        if self.resolved_dir.is_dir() and knowledge_files(self.resolved_dir):
            dirs.append(self.resolved_dir)
        return dirs

    def install(self, files: list[Path], *, replace: bool) -> None:
        """Check uploaded knowledge files and install them (the caller rebuilds the index).

        Files that are not CSV / JSONL / Markdown / TXT or larger than 5 MB are refused, and
        so is an upload from which no entry loads (the message lists the first problems).
        """
        Path(self.settings.data_dir).mkdir(parents=True, exist_ok=True)
        staged = Path(tempfile.mkdtemp(prefix="kb-upload-", dir=self.settings.data_dir))
        try:
            for src in map(Path, files):
                name = re.sub(r"[^\w.\-]+", "_", src.name)[:100]  # never trust a client's path
                if src.suffix.lower() not in SUPPORTED:
                    raise InvalidInput("kb_unsupported_file", name=name, choices=Items(SUPPORTED))
                if src.stat().st_size > MAX_UPLOAD_BYTES:
                    raise InvalidInput("kb_file_too_big", name=name, kb=src.stat().st_size // 1024)
                shutil.copyfile(src, staged / name)
            check = load_kb(staged)
            if not check.entries:
                details = Items(check.problems[:5], separator="list_separator_clause") if check.problems else None
                raise InvalidInput("upload_nothing_loaded", details=details or Msg("upload_no_entries"))
            self.uploads_dir.mkdir(parents=True, exist_ok=True)
            if replace:
                for old in self.uploads_dir.iterdir():
                    if old.is_file():
                        old.unlink()
            for path in staged.iterdir():
                os.replace(path, self.uploads_dir / path.name)
            if replace:
                (self.uploads_dir / REPLACE_MARKER).write_text(
                    "the uploaded files replace the bundled knowledge base\n"
                )
        finally:
            shutil.rmtree(staged, ignore_errors=True)

    def reset(self) -> None:
        """Forget uploaded files: back to the configured KB (resolved answers stay)."""
        if self.uploads_dir.is_dir():
            shutil.rmtree(self.uploads_dir)
