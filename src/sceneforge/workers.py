"""Run a function over many items in fresh worker processes, each result handed back as it finishes.

The workers are spawned (no inherited OpenGL context or torch thread state) and never outlive the
call: an error in an item, an error in the caller's callback, Ctrl-C, or SIGTERM sent to the
calling process (``kill``, ``pkill``, a scheduler's stop) terminates them, and a worker whose
calling process is gone (SIGKILL, a crash) exits within a second. Before, a benchmark stopped with
``pkill`` left its workers running their views for up to an hour.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from multiprocessing import get_context
from typing import Any


def run_each(function: Callable[..., Any], items: Sequence[Any], arguments: tuple = (), jobs: int = 1,
             finished: Callable[[Any, Any], None] = lambda item, result: None) -> None:
    """Call ``finished(item, function(item, *arguments))`` for every item of ``items``.

    With ``jobs`` > 1, in that many worker processes, in the order the items finish (``function``,
    the items, the arguments and the results must pickle; ``function`` must be importable); with 1,
    here, in order. An item's error is raised here, its traceback from the worker as the cause."""
    if jobs < 1:
        raise ValueError(f"jobs must be at least 1, got {jobs}")
    if jobs == 1 or len(items) <= 1:
        for item in items:
            finished(item, function(item, *arguments))
        return
    tasks = [(index, function, item, arguments) for index, item in enumerate(items)]
    with _sigterm_raises_systemexit(), \
            get_context("spawn").Pool(min(jobs, len(items)), _exit_with_parent, (os.getpid(),)) as pool:
        # leaving this block for any reason terminates the workers (Pool.__exit__)
        for index, result in pool.imap_unordered(_call, tasks):
            finished(items[index], result)


def _call(task: tuple[int, Callable[..., Any], Any, tuple]) -> tuple[int, Any]:
    """A worker's step: ``(index, function(item, *arguments))`` for ``task = (index, function, item, arguments)``."""
    index, function, item, arguments = task
    return index, function(item, *arguments)


def _exit_with_parent(parent: int, period_s: float = 0.5) -> None:
    """A worker's initialiser: a daemon thread ends the worker process once ``parent`` is no longer
    its parent (the caller was killed outright, where no clean-up of its own runs)."""
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(period_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


@contextmanager
def _sigterm_raises_systemexit() -> Iterator[None]:
    """While inside, SIGTERM raises SystemExit(143) in the main thread instead of killing the
    process outright, so ``with`` blocks and ``finally`` clauses (the worker pool's among them) run.
    A handler the program set itself is left alone, as is any thread but the main one."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
