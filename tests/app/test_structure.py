"""The code's shape: no module imports, directly or through others, a module that imports it back."""

from __future__ import annotations

import ast

from tests.helpers import ROOT

PACKAGE = ROOT / "aigc_demo"


def import_graph() -> dict[str, set[str]]:
    """aigc_demo module → the aigc_demo modules it imports, at any depth of its code (a function's
    deferred import still ties the two together)."""
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        modules[name.removesuffix(".__init__")] = path
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                continue
            graph[name] |= {t for t in targets if t in modules and t != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while (w := stack.pop()) != v:
                group.append(w)
            if group:
                found.append(sorted([v, *group]))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    graph = import_graph()
    assert "aigc_demo.services.support.stemmer" in graph["aigc_demo.services.support.lexicon"]
    assert cycles(graph) == []


def test_services_are_composed_without_the_ui(tmp_path):
    # Issue 27: the composition root lives outside the UI, so a service, a benchmark or the CLI
    # builds every service without importing Gradio.
    import os
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from aigc_demo.app_services import build_services\n"
        "from aigc_demo.config import Settings\n"
        f"services = build_services(Settings(data_dir={str(tmp_path)!r}, preload=False))\n"
        "assert services.health()['status'] in ('ok', 'degraded')\n"
        "print(sorted(m for m in sys.modules if m == 'gradio' or m.startswith('gradio.')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=PACKAGE.parent,
        env={**os.environ, "PYTHONPATH": str(PACKAGE.parent)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"
    assert "aigc_demo.ui" not in "".join(import_graph()["aigc_demo.app_services"])


def test_a_developers_settings_never_reach_a_module_scoped_server(tmp_path):
    # Issue 27: module-scoped servers started before the per-test isolating fixture and could read
    # the developer's own AIGC_* environment. The suite's conftest now drops it before any fixture.
    import os
    import subprocess
    import sys

    probe = tmp_path / "test_probe.py"
    probe.write_text(
        "import os, pytest\n"
        "@pytest.fixture(scope='module')\n"
        "def seen():\n"
        "    return sorted(k for k in os.environ if k in ('AIGC_PORT', 'OPENAI_API_KEY', 'GRADIO_SERVER_PORT'))\n"
        "def test_probe(seen):\n"
        "    assert seen == []\n",
        encoding="utf-8",
    )
    env = {**os.environ, "AIGC_PORT": "1", "OPENAI_API_KEY": "sk-mine", "GRADIO_SERVER_PORT": "2"}
    env["PYTHONPATH"] = str(PACKAGE.parent)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider", str(probe)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
