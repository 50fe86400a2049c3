"""Load a knowledge base from a directory of CSV / JSONL / Markdown / TXT files.

Q&A files (CSV, JSONL) need ``question`` and ``answer``; ``id``, ``category`` and
``url`` are optional. Markdown and text are chunked by headings (in text: title lines) and paragraphs. A bad
file or line is reported (file, line, problem) and skipped; good ones still load, so
one typo never takes the support tab down.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

SUPPORTED = (".jsonl", ".csv", ".md", ".markdown", ".txt")
MAX_FIELD_CHARS = 8000

# What can be wrong with a knowledge file, in each language the page speaks; a Problem
# carries its key and fields, and the page renders it in the reader's language.
PROBLEM_TEXTS: dict[str, tuple[str, str]] = {
    "not_directory": (
        "{path}: not a directory (set AIGC_SUPPORT_KB to a folder of knowledge files)",
        "{path}：不是文件夹（请把 AIGC_SUPPORT_KB 设为存放知识文件的文件夹）",
    ),
    "not_utf8": (
        "{file}: not UTF-8 text (byte {byte}); save it as UTF-8",
        "{file}：不是 UTF-8 文本（第 {byte} 字节）；请另存为 UTF-8",
    ),
    "unreadable": ("{file}: cannot read ({reason})", "{file}：无法读取（{reason}）"),
    "not_object": (
        "{file}, line {line}: expected an object with question and answer",
        "{file} 第 {line} 行：应为包含 question 和 answer 的对象",
    ),
    "missing": ("{file}, line {line}: missing {fields}", "{file} 第 {line} 行：缺少 {fields}"),
    # Python's JSON message is English: a Chinese page gets the line without it.
    "bad_json": ("{file}, line {line}: invalid JSON ({reason})", "{file} 第 {line} 行：JSON 格式错误"),
    "csv_header": (
        "{file}, line 1: the header needs 'question' and 'answer' columns",
        "{file} 第 1 行：表头需要 question 和 answer 两列",
    ),
    "duplicate_id": (
        "{file}: duplicate id {id!r}; renamed to {new_id}",
        "{file}：编号 {id!r} 重复，已改为 {new_id}",
    ),
}


class Problem(str):
    """One problem with a knowledge file: reads as English text (logs, the API), and
    ``in_language("zh")`` renders it for a Chinese page."""

    key: str
    fields: dict[str, object]

    def __new__(cls, key: str, **fields: object) -> Problem:
        made = super().__new__(cls, _render(key, "en", fields))
        made.key, made.fields = key, fields
        return made

    def in_language(self, lang: str) -> str:
        return _render(self.key, lang, self.fields)


def _render(key: str, lang: str, fields: dict[str, object]) -> str:
    """A problem's text in ``lang``; a list field reads "a and b" / "a 和 b"."""
    joined = {
        k: (" 和 " if lang == "zh" else " and ").join(map(str, v)) if isinstance(v, list | tuple) else v
        for k, v in fields.items()
    }
    return PROBLEM_TEXTS[key][1 if lang == "zh" else 0].format(**joined)


@dataclass
class Entry:
    id: str
    question: str
    answer: str
    category: str = ""
    url: str = ""
    source: str = ""

    @property
    def text(self) -> str:
        return f"{self.question}\n{self.answer}"


@dataclass
class KnowledgeBase:
    entries: list[Entry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    fingerprint: str = ""


def knowledge_files(directory: Path) -> list[Path]:
    return sorted(
        p
        for p in Path(directory).rglob("*")
        if p.is_file() and p.suffix.lower() in SUPPORTED and p.name.lower() != "readme.md"
    )


def load_kb(*directories: Path) -> KnowledgeBase:
    """Load every knowledge file of the given folders (later folders add to earlier ones)."""
    kb = KnowledgeBase()
    digest = hashlib.sha256()
    files: list[Path] = []
    for directory in directories:
        directory = Path(directory)
        if not directory.is_dir():
            kb.problems.append(Problem("not_directory", path=directory))
            continue
        files.extend(knowledge_files(directory))
    for path in files:
        try:
            raw = path.read_bytes()
            text = raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            kb.problems.append(Problem("not_utf8", file=path.name, byte=exc.start))
            continue
        except OSError as exc:
            kb.problems.append(Problem("unreadable", file=path.name, reason=exc.strerror))
            continue
        digest.update(path.name.encode() + b"\0" + raw)
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            _load_jsonl(path, text, kb)
        elif suffix == ".csv":
            _load_csv(path, text, kb)
        elif suffix == ".txt":
            _load_markdown(path, titles_as_headings(text), kb)
        else:
            _load_markdown(path, text, kb)
    _dedupe_ids(kb)
    kb.fingerprint = digest.hexdigest()[:16]
    return kb


def _add(kb: KnowledgeBase, path: Path, line: int, row: dict, fallback_id: str) -> None:
    if not isinstance(row, dict):
        kb.problems.append(Problem("not_object", file=path.name, line=line))
        return
    question = str(row.get("question") or "").strip()
    answer = str(row.get("answer") or "").strip()
    missing = [name for name, value in (("question", question), ("answer", answer)) if not value]
    if missing:
        kb.problems.append(Problem("missing", file=path.name, line=line, fields=missing))
        return
    kb.entries.append(
        Entry(
            id=str(row.get("id") or fallback_id).strip(),
            question=question[:MAX_FIELD_CHARS],
            answer=answer[:MAX_FIELD_CHARS],
            category=str(row.get("category") or "").strip(),
            url=str(row.get("url") or "").strip(),
            source=path.name,
        )
    )


def _load_jsonl(path: Path, text: str, kb: KnowledgeBase) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            kb.problems.append(Problem("bad_json", file=path.name, line=number, reason=exc.msg))
            continue
        _add(kb, path, number, row, f"{path.stem}-{number}")


def _load_csv(path: Path, text: str, kb: KnowledgeBase) -> None:
    reader = csv.DictReader(text.splitlines())
    fields = {f.strip().lower() for f in reader.fieldnames or []}
    if not {"question", "answer"} <= fields:
        kb.problems.append(Problem("csv_header", file=path.name))
        return
    for row in reader:
        cleaned = {str(k).strip().lower(): v for k, v in row.items() if k is not None}
        _add(kb, path, reader.line_num, cleaned, f"{path.stem}-{reader.line_num}")


_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
# A numbered title line of a plain-text document: 第五条 / 第二章 / 三、 / 5. / 5.2 / Article 5 …
_NUMBERED_TITLE = re.compile(
    r"^\s*(第[一二三四五六七八九十百零〇\d]+[条章节部分款]|[一二三四五六七八九十]+[、.．]|"
    r"[（(][一二三四五六七八九十\d]+[)）]|\d+(\.\d+)*[.、．)）]?\s|(article|section|chapter|part)\s+\d+)",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"[。！？!?；;，,：:]\s*$")


def titles_as_headings(text: str) -> str:
    """Plain-text policies mark sections with title lines ("第五条 押金与退还", "3. Late
    payment") rather than ``#``. A short numbered line that is not a sentence, a short line
    between a blank line and its body, or the document's own title line becomes a heading,
    so each section is its own entry titled by its name (without this a policy was one run
    of 800-character chunks, all titled by the file name)."""
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        following = lines[i + 1].strip() if i + 1 < len(lines) else ""
        before = lines[i - 1].strip() if i else ""
        short = 0 < len(stripped) <= 40 and not _SENTENCE_END.search(stripped)
        numbered = short and _NUMBERED_TITLE.match(stripped) is not None and bool(following)
        framed = short and not before and len(following) > len(stripped)
        document_title = short and not any(x.strip() for x in lines[:i]) and not following
        out.append(f"## {stripped}" if numbered or framed or document_title else line)
    return "\n".join(out)


def _load_markdown(path: Path, text: str, kb: KnowledgeBase) -> None:
    """Each heading's body becomes an entry titled by its heading path; long bodies split by paragraph."""
    title = path.stem.replace("_", " ").replace("-", " ")
    heading = title
    buffer: list[str] = []
    line_start = 1
    count = 0

    def flush() -> None:
        nonlocal count
        body = "\n".join(buffer).strip()
        if not body:
            return
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip()]
        chunk = ""
        for para in paragraphs:
            if chunk and len(chunk) + len(para) > 800:
                count += 1
                _add(kb, path, line_start, {"question": heading, "answer": chunk}, f"{path.stem}-{count}")
                chunk = ""
            chunk = f"{chunk}\n\n{para}".strip()
        if chunk:
            count += 1
            _add(kb, path, line_start, {"question": heading, "answer": chunk}, f"{path.stem}-{count}")

    for number, line in enumerate(text.splitlines(), start=1):
        match = _HEADING.match(line)
        if match:
            flush()
            buffer, heading, line_start = [], match.group(2).strip() or title, number
        else:
            buffer.append(line)
    flush()


def _dedupe_ids(kb: KnowledgeBase) -> None:
    seen: dict[str, int] = {}
    for entry in kb.entries:
        if entry.id in seen:
            seen[entry.id] += 1
            kb.problems.append(
                Problem("duplicate_id", file=entry.source, id=entry.id, new_id=f"{entry.id}-{seen[entry.id]}")
            )
            entry.id = f"{entry.id}-{seen[entry.id]}"
        else:
            seen[entry.id] = 1
