"""Text engines compared in one run, interleaved: raw llama.cpp, the app end to end, and the
app through each of its engines; then many users at once.

    python bench/text_engines.py [--model qwen|smollm2] [--rounds 3] [--tokens 256] [--users 10] [--no-transformers]

Three child processes, only one of them busy at a time:
- **raw llama.cpp**: llama-cpp-python's own ``create_chat_completion(stream=True)`` on the
  same packaged GGUF (``--model``: Qwen2.5-Coder-0.5B, the offline default, or SmolLM2-135M),
  no app around it: the reference;
- **the app** (``python app.py``, offline profile) driven only through gradio_client's
  streaming ``/generate_text``: its llama.cpp engine, ``openai:<model>`` (the
  OpenAI-compatible engine), and ``transformers:packaged:<model>``;
- **a llama.cpp server** (``python -m llama_cpp.server``) that the OpenAI engine talks to.

Each round runs every path once with the same greedy request (``--tokens`` new tokens), in
a rotated order, so drift in the machine's speed hits all paths alike. Speed is completion
tokens / wall time from request to final result, client side (prompt processing, queueing
and streaming included), and time to first token is the first non-empty text the client
sees. Then ``--users`` clients start together on the default engine (sampled answers to
different zh/en prompts) and, for comparison, on the OpenAI engine: first-token p50/p95.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import median, percentile, record

# About 60 tokens with the chat template (Qwen's tokenizer), Chinese like most of our users'.
PROMPT = (
    "请写一个很长的故事：一条小龙在杭州的一家老茶馆里学做菜，它每天向老师傅请教。"
    "请详细描写它做的每一道菜的样子、味道和做法。"
)
MODELS = {"qwen": "packaged:qwen2.5-coder-0.5b-instruct", "smollm2": "packaged:smollm2-135m-instruct"}
USER_PROMPTS = [
    "介绍一下桂花乌龙茶的特点。",
    "Write a short poem about the sea.",
    "如何在家做一杯好喝的咖啡？",
    "Explain why the sky is blue.",
    "给一款降噪耳机写一段营销文案。",
    "List three tips for learning English.",
    "周末去杭州玩，有什么推荐？",
    "Describe a perfect Sunday morning.",
    "怎样写一封礼貌的请假邮件？",
    "What makes a good team leader?",
    "用三句话总结人工智能的发展。",
    "Tell me a fun fact about octopuses.",
]
RAW = r"""
import json, sys, time, glob
from llama_cpp import Llama
from aigc_demo.models.text_llamacpp import physical_cores
n = physical_cores()
llm = Llama(sys.argv[1], n_ctx=4096, n_threads=n, n_threads_batch=n, verbose=False)
print("ready", flush=True)
for line in sys.stdin:
    req = json.loads(line)
    t0 = time.perf_counter(); first = None; tokens = 0
    for chunk in llm.create_chat_completion([{"role": "user", "content": req["prompt"]}], max_tokens=req["tokens"],
                                            temperature=0, stream=True):
        if chunk["choices"][0]["delta"].get("content"):
            tokens += 1
            first = first or time.perf_counter() - t0
    print(json.dumps({"tokens": tokens, "wall": time.perf_counter() - t0, "ttft": first}), flush=True)
"""

# The engine alone against llama-cpp-python in one process, alternating: what the engine costs
# or saves before any serving.
ENGINE_ONLY = r"""
import json, sys, time
from llama_cpp import Llama
from aigc_demo.models.base import GenerationStats, TextRequest
from aigc_demo.models.text_llamacpp import LlamaCppTextBackend, physical_cores
prompt, tokens, rounds, gguf, model_id = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5]
n = physical_cores()
llm = Llama(gguf, n_ctx=4096, n_threads=n, n_threads_batch=n, verbose=False)
engine = LlamaCppTextBackend(model_id, path=gguf)
engine.load()
messages = [{"role": "user", "content": prompt}]
def raw():
    t0 = time.perf_counter(); k = 0
    for chunk in llm.create_chat_completion(messages, max_tokens=tokens, temperature=0, stream=True):
        k += bool(chunk["choices"][0]["delta"].get("content"))
    return k / (time.perf_counter() - t0)
def ours():
    stats = GenerationStats(); t0 = time.perf_counter()
    for _ in engine.stream(TextRequest(messages=messages, max_new_tokens=tokens, temperature=0), stats):
        pass
    return stats.completion_tokens / (time.perf_counter() - t0)
raw(); ours()
out = {"raw": [], "engine": []}
for _ in range(rounds):
    out["raw"].append(raw()); out["engine"].append(ours())
print(json.dumps(out))
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{url}: process exited\n{log.read_text(errors='replace')[-2000:]}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError(url)


def stream_once(client, prompt: str, tokens: int, model: str, temperature: float = 0.0, seed: int = 0) -> dict:
    """One streamed /generate_text call, timed client side."""
    t0 = time.perf_counter()
    job = client.submit(
        prompt, max_new_tokens=tokens, temperature=temperature, seed=seed, model=model, api_name="/generate_text"
    )
    first = None
    final = None
    for update in job:
        if first is None and update.get("text"):
            first = time.perf_counter() - t0
        if update.get("done"):
            final = update
    final = final or job.result()
    return {
        "tokens": final["usage"]["completion_tokens"],
        "wall": time.perf_counter() - t0,
        "ttft": first,
        "final": final,
    }


def users_at_once(url: str, users: int, tokens: int, model: str) -> dict:
    from gradio_client import Client

    clients = [Client(url, verbose=False) for _ in range(users)]
    barrier = threading.Barrier(users)
    ttfts: list[float] = []
    walls: list[float] = []
    produced: list[int] = []
    errors: list[str] = []
    lock = threading.Lock()

    def user(i: int) -> None:
        barrier.wait()
        try:
            got = stream_once(clients[i], USER_PROMPTS[i % len(USER_PROMPTS)], tokens, model, temperature=0.7, seed=i)
        except Exception as exc:  # noqa: BLE001 - counted, not raised
            with lock:
                errors.append(f"{type(exc).__name__}: {str(exc)[:100]}")
            return
        with lock:
            ttfts.append(got["ttft"] if got["ttft"] is not None else got["wall"])
            walls.append(got["wall"])
            produced.append(got["tokens"])

    t0 = time.perf_counter()
    threads = [threading.Thread(target=user, args=(i,)) for i in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    return {"ttft": ttfts, "walls": walls, "tokens": sum(produced), "wall": wall, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="qwen", choices=list(MODELS), help="the packaged GGUF every path runs")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tokens", type=int, default=256)
    parser.add_argument("--users", type=int, default=10)
    parser.add_argument("--user-tokens", type=int, default=128, help="new tokens per concurrent user")
    parser.add_argument("--no-transformers", action="store_true", help="skip the (slow on CPU) transformers path")
    parser.add_argument("--cache-dir", type=Path, default=ROOT / "data" / "cache")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-engines-"))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONPATH": str(ROOT)}
    procs: list[subprocess.Popen] = []
    try:
        server_port = free_port()
        server_log = work / "llama-server.log"
        from aigc_demo.models import packaged
        from aigc_demo.models.text_llamacpp import physical_cores

        cores = str(physical_cores())
        model_id = MODELS[args.model]
        gguf = str(packaged.qwen_gguf(args.cache_dir) if args.model == "qwen" else packaged.smollm2_gguf())
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                gguf,
                "--model_alias",
                args.model,
                "--host",
                "127.0.0.1",
                "--port",
                str(server_port),
                "--n_ctx",
                "4096",
                "--n_threads",
                cores,
                "--n_threads_batch",
                cores,
                "--interrupt_requests",
                "False",
                "--verbose",
                "False",
            ],
            env=env,
            stdout=server_log.open("w"),
            stderr=subprocess.STDOUT,
        )
        procs.append(server)
        base_url = f"http://127.0.0.1:{server_port}/v1"
        wait_http(f"{base_url}/models", server, server_log)

        models = {"app · llama.cpp": model_id, "app · OpenAI engine → llama.cpp server": f"openai:{args.model}"}
        if not args.no_transformers:
            models["app · transformers"] = f"transformers:{model_id}"
        app_port = free_port()
        app_log = work / "app.log"
        app = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py")],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=app_log.open("w"),
            env={
                **env,
                "AIGC_PROFILE": "offline",
                "AIGC_DATA_DIR": str(work / "data"),
                "AIGC_CACHE_DIR": str(args.cache_dir),
                "AIGC_PORT": str(app_port),
                "AIGC_OPENAI_BASE_URL": base_url,
                "AIGC_TEXT_MODELS": ",".join(m for m in models.values() if m),
            },
        )
        procs.append(app)
        url = f"http://127.0.0.1:{app_port}/"
        wait_http(url, app, app_log)
        from gradio_client import Client

        client = Client(url, verbose=False)

        raw = subprocess.Popen(
            [sys.executable, "-c", RAW, gguf], env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        procs.append(raw)
        assert raw.stdout is not None and raw.stdin is not None
        assert raw.stdout.readline().strip() == "ready"

        def run_raw() -> dict:
            raw.stdin.write(json.dumps({"prompt": PROMPT, "tokens": args.tokens}) + "\n")
            raw.stdin.flush()
            return json.loads(raw.stdout.readline())

        paths = {"raw llama.cpp (llama-cpp-python)": run_raw}
        for label, model in models.items():
            paths[label] = lambda model=model: stream_once(client, PROMPT, args.tokens, model)
        for fn in paths.values():  # warm-up: load every model, fill caches
            fn()

        results: dict[str, list[dict]] = {label: [] for label in paths}
        labels = list(paths)
        for r in range(args.rounds):
            for label in labels[r % len(labels) :] + labels[: r % len(labels)]:
                got = paths[label]()
                results[label].append(got)
                print(
                    f"round {r + 1} {label}: {got['tokens']} tokens, {got['tokens'] / got['wall']:.1f} tok/s, "
                    f"first token {got['ttft'] * 1000:.0f} ms",
                    flush=True,
                )

        raw_speed = median([g["tokens"] / g["wall"] for g in results[labels[0]]])
        rows = [
            "| path | tokens | tok/s (median) | min–max | × raw | first token (median) |",
            "|---|---|---|---|---|---|",
        ]
        for label in labels:
            speeds = [g["tokens"] / g["wall"] for g in results[label]]
            ttft = median([g["ttft"] * 1000 for g in results[label] if g["ttft"] is not None])
            rows.append(
                f"| {label} | {median([g['tokens'] for g in results[label]]):.0f} | {median(speeds):.1f} | "
                f"{min(speeds):.1f}–{max(speeds):.1f} | {median(speeds) / raw_speed:.2f} | {ttft:.0f} ms |"
            )

        alone = json.loads(
            subprocess.run(
                [
                    sys.executable,
                    "-c",
                    ENGINE_ONLY,
                    PROMPT,
                    str(args.tokens),
                    str(max(3, args.rounds + 1)),
                    gguf,
                    model_id,
                ],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        rows.append(
            f"| llama.cpp engine alone, in-process (raw in the same process: {median(alone['raw']):.1f}) | "
            f"{args.tokens} | "
            f"{median(alone['engine']):.1f} | {min(alone['engine']):.1f}–{max(alone['engine']):.1f} | "
            f"{median(alone['engine']) / median(alone['raw']):.2f} | — |"
        )

        users = [
            "| engine | users | errors | first token p50 | p95 | max | answer p95 | aggregate tok/s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for label, model in list(models.items())[:2]:
            got = users_at_once(url, args.users, args.user_tokens, model)
            t = got["ttft"]
            users.append(
                f"| {label} | {args.users} | {len(got['errors'])} | {median(t):.2f} s | {percentile(t, 0.95):.2f} s | "
                f"{max(t) if t else float('nan'):.2f} s | {percentile(got['walls'], 0.95):.1f} s | "
                f"{got['tokens'] / got['wall']:.1f} |"
            )
            print(users[-1], got["errors"][:2], flush=True)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(work, ignore_errors=True)

    record(
        "Text engines: raw llama.cpp vs the app end to end, and users at once",
        f"python bench/text_engines.py --model {args.model} --rounds {args.rounds} --tokens {args.tokens} "
        f"--users {args.users} "
        f"--user-tokens {args.user_tokens}{' --no-transformers' if args.no_transformers else ''}",
        "\n".join(rows) + "\n\n" + "\n".join(users),
        notes=f"`{model_id}`. Greedy, {args.tokens} new tokens, the same Chinese prompt (about 60 tokens with "
        "the chat template) for every path; "
        f"{args.rounds} interleaved rounds "
        "after a warm-up. tok/s = completion tokens / client wall time (prompt, queue and streaming included). "
        f"Users: {args.users} gradio_client users started together, each a different zh/en prompt, sampled "
        f"(temperature 0.7), {args.user_tokens} new tokens; first token = first non-empty text the client receives. "
        "The llama.cpp server (llama-cpp-python's, run with --interrupt_requests False so a new request does not "
        "cut off the one streaming) serves one request at a time; the app's own engine batches.",
    )


if __name__ == "__main__":
    random.seed(0)
    main()
