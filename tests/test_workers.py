"""sceneforge.workers.run_each: results paired with their items, errors raised, and no worker process
left running after the caller stops."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import sceneforge
from sceneforge.workers import run_each


def test_every_item_runs_once_and_comes_back_with_its_own_result():
    """With 2 spawned workers in any order, with 1 job in order."""
    items = list(range(7))
    for jobs in (2, 1):
        finished = []
        run_each(pow, items, (3,), jobs, lambda item, result: finished.append((item, result)))
        assert sorted(finished) == [(i, i ** 3) for i in items]
        assert jobs == 2 or finished == [(i, i ** 3) for i in items]
    with pytest.raises(ValueError, match="jobs"):
        run_each(pow, items, (3,), 0)


def test_an_item_error_is_raised_here_without_waiting_for_the_other_workers():
    """divmod(1, 0) fails at once while the other worker sleeps for a minute: the error comes back
    within seconds, and the sleeping worker is terminated, not waited for."""
    start = time.monotonic()
    with pytest.raises(ZeroDivisionError):
        run_each(_sleep_or_divide, [60, 0], (), 2)
    assert time.monotonic() - start < 30


def _sleep_or_divide(seconds: int) -> float:
    if seconds:
        time.sleep(seconds)
        return float(seconds)
    return divmod(1, 0)[0]


CALLER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path
    from sceneforge.workers import run_each

    def work(item, folder):
        Path(folder, f"{os.getpid()}.pid").write_text("")
        time.sleep(120)

    if __name__ == "__main__":
        run_each(work, [0, 1], (sys.argv[1],), 2)
""")


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL])
def test_a_stopped_caller_leaves_no_worker_running(tmp_path: Path, stop):
    """`kill` (SIGTERM) of a process inside run_each: it exits (143) and terminates its two busy
    workers; `kill -9` (SIGKILL, no clean-up in the caller): its workers see their parent gone and
    exit. Either way none runs on as an orphan."""
    script = tmp_path / "caller.py"
    script.write_text(CALLER)
    pids = tmp_path / "pids"
    pids.mkdir()
    here = str(Path(sceneforge.__file__).resolve().parents[1])  # the caller imports this very sceneforge
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}
    caller = subprocess.Popen([sys.executable, str(script), str(pids)], env=env)
    try:
        deadline = time.monotonic() + 60
        while len(list(pids.glob("*.pid"))) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        workers = [int(p.stem) for p in pids.glob("*.pid")]
        assert len(workers) == 2, "the workers did not start within a minute"
        caller.send_signal(stop)
        assert caller.wait(timeout=30) == (128 + stop if stop == signal.SIGTERM else -stop)
        deadline = time.monotonic() + 10
        while any(_running(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not [pid for pid in workers if _running(pid)]
    finally:
        caller.kill()
        caller.wait()


def _running(pid: int) -> bool:
    """True while process ``pid`` exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not status.exists() or "zombie" not in status.read_text()
