"""Every benchmark script at least compiles (one had lost an indent and nobody ran it)."""

from __future__ import annotations

import py_compile

import pytest

from tests.helpers import ROOT

BENCH = sorted((ROOT / "bench").glob("*.py"))


@pytest.mark.parametrize("script", BENCH, ids=lambda p: p.name)
def test_bench_script_compiles(script, tmp_path):
    py_compile.compile(str(script), cfile=str(tmp_path / "out.pyc"), doraise=True)
