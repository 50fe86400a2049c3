"""Where CPU tensor work runs: one long-lived compute thread owns torch's thread team.

Torch's CPU kernels fork and join an OpenMP team for almost every op. libgomp gives each
thread that starts parallel work its own team, which lives as long as that thread, and
once the process holds more OpenMP threads than cores it stops spinning between regions
(GOMP "throttled" spin count: 100) so every op pays a futex wake-up. Decoding is
thousands of tiny ops, so a second team — the model loaded on one Gradio worker thread,
generated on another — costs most of the decode speed (bench/text_precision.py runs on
this thread; bench/RESULTS.md has the figures).

So the models' heavy work (loading, text generation, image denoising, KB embedding) runs
on one executor thread with the full thread count, and every other thread runs torch
single-threaded — the first :func:`submit` imports torch, starts the compute thread and
then lowers torch's default to one thread — which makes no team at all: a query's embedding on a
request thread, a stray tensor op anywhere. On 2 cores two heavy jobs at once would only
share the cores, so queueing them costs little throughput and keeps each one fast.

Generation also runs *below the server's priority* (:func:`lower_priority`, nice
``GENERATION_NICE``): on 2 cores a text or image job otherwise takes both cores from the
threads that answer ratings, support questions and page loads, which then ran ~30× slower
during a flood. Linux gives each thread its own nice value and new threads inherit it, so
the compute thread and llama.cpp's decode thread lower themselves before their first job and
the thread teams they start (OpenMP, ggml) run low too. With nothing else to do they
still get every core; they yield only while the server has work.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)
# CFS weight 110 against the server's 1024: ~90 % of the cores for requests when both want them.
# AIGC_GENERATION_NICE=0 turns it off (bench/flood.py compares the two).
GENERATION_NICE = int(os.environ.get("AIGC_GENERATION_NICE", "10"))


def lower_priority(nice: int = GENERATION_NICE) -> None:
    """Run the calling thread (and the threads it starts from now on) at ``nice``."""
    try:
        current = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        if current < nice:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), nice)
    except (OSError, AttributeError) as exc:  # not Linux, or a sandbox that forbids it: keep going
        log.info("generation priority unchanged: %s", exc)


_local = threading.local()
_start_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
THREADS = 0  # torch's thread count on the compute thread, set when it starts


def _executor_started() -> ThreadPoolExecutor:
    """The compute thread, started on first use: torch is imported only by the engines that
    need it (llama.cpp and remote engines never do, and importing it takes seconds)."""
    global _executor, THREADS
    with _start_lock:
        if _executor is None:
            import torch

            THREADS = torch.get_num_threads()  # honours OMP_NUM_THREADS / the core count

            def init() -> None:
                _local.compute = True
                lower_priority()
                torch.set_num_threads(THREADS)  # this thread's own setting: kept when others change theirs...
                # ...once torch has initialised this thread's setting, which it does lazily on the
                # first get (from the process-wide default, lowered to 1 just below): do it now.
                assert torch.get_num_threads() == THREADS

            executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="compute", initializer=init)
            executor.submit(int).result()  # start the compute thread now, with the full thread count
            torch.set_num_threads(1)  # every other thread, now and later: one thread, no team
            _executor = executor
        return _executor


def _in_compute_thread() -> bool:
    return getattr(_local, "compute", False)


def submit(fn: Callable[..., T], *args: Any, **kwargs: Any) -> Future:
    """Queue ``fn`` on the compute thread; returns its future."""
    if _in_compute_thread():  # already there: run now (a queued job would deadlock)
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - delivered through the future
            future.set_exception(exc)
        return future
    return _executor_started().submit(fn, *args, **kwargs)


def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run ``fn`` on the compute thread and return its result (exceptions propagate)."""
    return submit(fn, *args, **kwargs).result()
