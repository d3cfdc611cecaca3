"""How many CPUs this process may really use, and OpenMP settings for a shared machine.

``os.cpu_count()`` (and torch's default thread count with it) counts the machine's cores, not
the ones this process may run on: a CPU affinity mask (``taskset``, a Slurm or Ray
allocation) and a cgroup CPU quota (a container's ``--cpus``) both give it fewer. Torch threads
beyond those contend for the same cores, and OpenMP threads that spin while they wait for a
contended core slow every process on the machine (measured in benchmarks/RESULTS.md).

Standard library only: the CLI calls :func:`quiet_openmp` before anything imports torch.
"""

from __future__ import annotations

import math
import os
from collections.abc import MutableMapping
from pathlib import Path

#: Where cgroup v2 (``cpu.max``) and v1 (``cpu/cpu.cfs_quota_us``) keep a CPU quota.
CGROUP_ROOT = Path("/sys/fs/cgroup")
#: OpenMP settings that make idle worker threads sleep instead of spinning (libgomp reads
#: ``OMP_WAIT_POLICY``; Intel's OpenMP ``KMP_BLOCKTIME``); a value the user set is kept.
QUIET_OPENMP = {"OMP_WAIT_POLICY": "PASSIVE", "KMP_BLOCKTIME": "0"}


def cgroup_cpu_limit(*, root: Path = CGROUP_ROOT) -> float | None:
    """The CPU quota of this process's cgroup, in CPUs, or None when there is none.

    Args:
        root: the cgroup file system's mount point.

    Returns:
        ``quota / period`` from cgroup v2's ``cpu.max`` or v1's ``cpu.cfs_quota_us`` and
        ``cpu.cfs_period_us``; None for "max", -1, or files that are absent or unreadable.
    """
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
        if quota != "max" and float(period) > 0:
            return float(quota) / float(period)
        return None
    except (OSError, ValueError):
        pass
    try:
        quota_us = float((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period_us = float((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def available_cpus(*, root: Path = CGROUP_ROOT) -> int:
    """The CPUs this process may use: its affinity mask, capped by its cgroup quota.

    Args:
        root: the cgroup file system's mount point.

    Returns:
        At least 1.
    """
    try:
        allowed = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        allowed = os.cpu_count() or 1
    limit = cgroup_cpu_limit(root=root)
    if limit is not None:
        # A quota of 1.5 CPUs runs two threads at 75 %: round up, never to more than allowed.
        allowed = min(allowed, math.ceil(limit))
    return max(1, allowed)


def threads_per_process(
    *, processes: int, environ: MutableMapping[str, str] | None = None, root: Path = CGROUP_ROOT
) -> int:
    """Torch threads for each of ``processes`` side-by-side workers.

    Args:
        processes: how many such processes share the CPUs (``--jobs``).
        environ: the environment; ``OMP_NUM_THREADS`` there, if set, is the user's choice and
            wins. Defaults to ``os.environ``.
        root: the cgroup file system's mount point.

    Returns:
        ``OMP_NUM_THREADS`` when it is a positive integer, else the available CPUs divided
        among the processes, at least 1.
    """
    environ = os.environ if environ is None else environ
    chosen = environ.get("OMP_NUM_THREADS", "").strip()
    if chosen.isdigit() and int(chosen) > 0:
        return int(chosen)
    return max(1, available_cpus(root=root) // max(1, processes))


def quiet_openmp(environ: MutableMapping[str, str] | None = None) -> dict[str, str]:
    """Make idle OpenMP threads sleep rather than spin, unless the user chose otherwise.

    Only takes effect for an OpenMP runtime not yet loaded (call it before importing torch);
    child processes (cells run by ``--jobs``, Ray or Slurm workers) inherit it.

    Args:
        environ: the environment to set; defaults to ``os.environ``.

    Returns:
        The variables it set (those the user had set are left out).
    """
    environ = os.environ if environ is None else environ
    added = {key: value for key, value in QUIET_OPENMP.items() if key not in environ}
    environ.update(added)
    return added
