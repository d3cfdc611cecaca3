"""The local executor's workers die with their driver (issue 13, item 9): a ``kill -9`` of
the driver must not leave workers finishing cells unindexed."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

DRIVER = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path

    def work(payload):
        Path(payload["pids"], str(os.getpid())).write_text("")
        time.sleep(300)  # a cell that outlives its driver unless the worker dies with it
        return payload

    if __name__ == "__main__":
        from isoeps.bench.executors.local import LocalExecutor

        payloads = [{"pids": sys.argv[1], "k": k} for k in range(2)]
        for _ in LocalExecutor(jobs=2).map(work, payloads):
            pass
""")


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    if stat.parent.parent.is_dir() and Path("/proc/self").exists():
        try:
            state = stat.read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return False
        return state not in ("Z", "X")  # a zombie has exited (init reaps it later)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for(condition, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


@pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL and getppid semantics are POSIX")
def test_workers_die_with_a_killed_driver(tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    pids_dir = tmp_path / "pids"
    pids_dir.mkdir()
    driver = subprocess.Popen(
        [sys.executable, str(script), str(pids_dir)],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    workers: list[int] = []
    try:
        started = _wait_for(lambda: len(list(pids_dir.iterdir())) == 2, timeout=120)
        workers = [int(p.name) for p in pids_dir.iterdir()]
        assert started, "the workers did not start"
        assert all(_alive(pid) for pid in workers)
        os.kill(driver.pid, signal.SIGKILL)
        driver.wait(timeout=30)
        assert _wait_for(lambda: not any(_alive(pid) for pid in workers), timeout=30), (
            f"workers {[pid for pid in workers if _alive(pid)]} outlived their driver"
        )
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait(timeout=30)
        for pid in workers:  # on failure, end the workers this test started
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_the_watchdog_ends_a_worker_whose_parent_is_gone():
    # where PR_SET_PDEATHSIG is missing, the watchdog thread alone must end the worker
    code = (
        "import os, threading, time\n"
        "from isoeps.bench.executors import local\n"
        "threading.Thread(target=local._watch_parent, args=(os.getppid() + 10**7,),"
        " daemon=True).start()\n"
        "time.sleep(120)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], timeout=120, check=False)
    assert result.returncode == 1
