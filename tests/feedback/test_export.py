"""Exports: every format round-trips through `datasets`, content is right, CLI and Hub errors are clear."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from aigc_demo.feedback.export import export
from aigc_demo.feedback.training_data import build
from tests.helpers import ROOT, run_cli


@pytest.fixture
def rated(services):
    """Two answers to one prompt (up and down), one support answer up, one image down, one re-rated."""
    fb = services.feedback
    backend = services.registry.get("text")
    backend.reply = "Good answer"
    good = services.text.generate("Write a slogan", seed=1)
    backend.reply = "Bad answer"
    bad = services.text.generate("Write a slogan", seed=2)
    backend.reply = None
    fb.rate(good["output_id"], "up")
    fb.rate(bad["output_id"], "up")
    fb.rate(bad["output_id"], "down", "too bland")  # the latest rating wins
    support = services.support.chat("How long does delivery take?")
    fb.rate(support["output_id"], "up")
    image = services.image.generate("fox", width=64, height=64)
    fb.rate(image["output_id"], "down", item=0)
    return fb.read("ratings").records


def test_sft_dpo_kto_content_with_lineage(rated):
    sft = build("sft", rated)
    assert next(m["messages"][-1]["content"] for m in sft) == "Good answer"
    assert sft[0]["messages"][-2] == {"role": "user", "content": "Write a slogan"}
    assert any("Standard shipping" in m["messages"][-1]["content"] for m in sft)
    dpo = build("dpo", rated)
    latest = {r["output"]["text"]: r["id"] for r in rated if r["tab"] == "text"}  # the latest rating per answer
    assert dpo == [
        {
            "prompt": "Write a slogan",
            "chosen": "Good answer",
            "rejected": "Bad answer",
            "source": "thumbs",
            "record_ids": [latest["Good answer"], latest["Bad answer"]],
        }
    ]
    kto = build("kto", rated)
    assert {(k["completion"], k["label"]) for k in kto if k["prompt"] == "Write a slogan"} == {
        ("Good answer", True),
        ("Bad answer", False),
    }


@pytest.mark.parametrize(
    ("fmt", "loader"), [("sft", "json"), ("dpo", "json"), ("kto", "json"), ("csv", "csv"), ("parquet", "parquet")]
)
def test_every_format_loads_with_datasets(rated, tmp_path, fmt, loader):
    import datasets

    out = tmp_path / f"export.{ {'sft': 'jsonl', 'dpo': 'jsonl', 'kto': 'jsonl'}.get(fmt, fmt) }"
    n = export(rated, fmt, out)
    ds = datasets.load_dataset(loader, data_files=str(out), split="train", cache_dir=str(tmp_path / "hf-cache"))
    assert len(ds) == n > 0
    if fmt == "dpo":
        assert set(ds.column_names) == {"prompt", "chosen", "rejected", "source", "record_ids"}
    if fmt == "kto":
        assert ds.features["label"].dtype == "bool"
    if fmt in ("csv", "parquet"):
        assert {"id", "tab", "rating", "output_id", "model.id"} <= set(ds.column_names)
        assert sorted(ds["tab"]) == ["image", "support", "text", "text"]


def test_filters_by_tab_and_date(rated, tmp_path):
    assert export(rated, "csv", tmp_path / "a.csv", tab="image") == 1
    assert export(rated, "csv", tmp_path / "b.csv", since="2999-01-01") == 0


def test_filters_match_insights_until_session_variant(services, tmp_path):
    import pandas as pd

    from aigc_demo.feedback.insights import filter_records, latest_ratings

    fb = services.feedback
    a = services.text.generate("one", session_id="s1")
    b = services.text.generate("two", session_id="s2")
    fb.rate(a["output_id"], "up", session_id="s1")
    fb.rate(b["output_id"], "up", session_id="s2")
    records = fb.read("ratings").records
    assert export(records, "csv", tmp_path / "s1.csv", session="s1") == 1
    frame = pd.read_csv(tmp_path / "s1.csv")
    assert list(frame["session_id"]) == ["s1"] and "one" in frame["prompt"][0]
    assert export(records, "csv", tmp_path / "old.csv", until="2000-01-01") == 0
    assert export(records, "csv", tmp_path / "v.csv", variant="nope") == 0
    # The same rows Insights counts for the same filters.
    assert len(latest_ratings(filter_records(records, session="s2"))) == export(
        records, "kto", tmp_path / "k.jsonl", session="s2"
    )


def test_cli_export_and_hub_error_without_token(rated, settings, tmp_path):
    out = tmp_path / "dpo.jsonl"
    run = run_cli("export", "--format", "dpo", "--out", str(out))  # in-process: no new interpreter
    assert run.returncode == 0 and "wrote 1 rows" in run.stdout
    none = run_cli(
        "export",
        "--format",
        "csv",
        "--out",
        str(tmp_path / "n.csv"),
        "--session",
        "nobody",
        "--until",
        "2999-01-01",
        "--variant",
        "-",
    )
    assert none.returncode == 0 and "wrote 0 rows" in none.stdout
    # The real `python -m aigc_demo`, with no token anywhere (huggingface_hub reads HF_HOME at import).
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_TOKEN": "", "HF_HOME": str(tmp_path / "hf")}
    push = subprocess.run(
        [
            sys.executable,
            "-m",
            "aigc_demo",
            "export",
            "--format",
            "kto",
            "--out",
            str(tmp_path / "k.jsonl"),
            "--push-to-hub",
            "team/data",
        ],
        check=False,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert push.returncode == 2 and "No Hugging Face token" in push.stderr


def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(services, tmp_path):
    import csv

    hostile = ['=HYPERLINK("https://evil.example","点我")', "+1+1", "-2+3", "@SUM(A1:A9)", "\tTAB", "\rCR"]
    for i, comment in enumerate(hostile):
        result = services.text.generate(comment if i % 2 else f"普通的提示 {i}", seed=i)
        services.feedback.rate(result["output_id"], "up", comment)
    out = tmp_path / "ratings.csv"
    export(services.feedback.read("ratings").records, "csv", out)
    with open(out, encoding="utf-8", newline="") as fh:
        cells = [cell for row in csv.reader(fh) for cell in row]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert '\'=HYPERLINK("https://evil.example","点我")' in cells and "'@SUM(A1:A9)" in cells
    # The JSONL and Parquet exports keep what was typed.
    export(services.feedback.read("ratings").records, "kto", tmp_path / "k.jsonl")
    assert '"prompt": "+1+1"' in (tmp_path / "k.jsonl").read_text(encoding="utf-8")
