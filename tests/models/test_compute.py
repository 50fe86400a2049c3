"""The compute thread owns torch's thread team; everything else runs torch single-threaded."""

from __future__ import annotations

import os
import threading

import pytest
import torch

from aigc_demo.models import compute


def test_compute_thread_keeps_the_full_thread_count_other_threads_get_one():
    assert compute.run(torch.get_num_threads) == compute.THREADS
    seen = []
    t = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    t.start()
    t.join()
    assert seen == [1]  # a request thread: no OpenMP team of its own
    assert compute.run(torch.get_num_threads) == compute.THREADS  # unchanged by the others


def test_run_returns_results_propagates_errors_and_nests():
    assert compute.run(lambda a, b=0: a + b, 2, b=3) == 5
    assert compute.run(lambda: threading.current_thread().name).startswith("compute")
    with pytest.raises(ValueError, match="boom"):
        compute.run(lambda: (_ for _ in ()).throw(ValueError("boom")))
    # A job that calls run() again (a load inside a generation) runs inline instead of deadlocking.
    assert compute.run(lambda: compute.run(lambda: 7)) == 7


def _nice() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


def test_generation_runs_below_the_server_threads():
    """Issue 25.12: model work yields the cores to the threads that answer requests."""
    here = _nice()
    assert compute.run(_nice) >= compute.GENERATION_NICE
    started: list[int] = []
    t = threading.Thread(target=lambda: started.append(_nice()))
    compute.run(lambda: (t.start(), t.join()))  # threads it starts (a thread team) run low too
    assert started == [compute.run(_nice)]
    assert _nice() == here  # the caller's thread is untouched
