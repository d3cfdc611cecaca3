"""isoeps.cpus: the CPUs a process may use (affinity, cgroup quota) and quiet OpenMP."""

from __future__ import annotations

import os

import pytest

from isoeps import cpus


def _cgroup(tmp_path, files: dict[str, str]):
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


@pytest.mark.parametrize(
    ("files", "limit"),
    [
        ({"cpu.max": "max 100000\n"}, None),
        ({"cpu.max": "150000 100000\n"}, 1.5),
        ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
        ({"cpu/cpu.cfs_quota_us": "100000\n", "cpu/cpu.cfs_period_us": "50000\n"}, 2.0),
        ({"cpu.max": "garbage\n"}, None),
        ({}, None),
    ],
)
def test_cgroup_quota_v1_and_v2(tmp_path, files, limit):
    assert cpus.cgroup_cpu_limit(root=_cgroup(tmp_path, files)) == limit


def test_available_cpus_is_the_affinity_capped_by_the_quota_rounded_up(tmp_path):
    allowed = len(os.sched_getaffinity(0))
    assert cpus.available_cpus(root=_cgroup(tmp_path, {})) == allowed
    quota = _cgroup(tmp_path / "q", {"cpu.max": "50000 100000\n"})  # half a CPU
    assert cpus.available_cpus(root=quota) == 1
    wide = _cgroup(tmp_path / "w", {"cpu.max": f"{(allowed + 8) * 100000} 100000\n"})
    assert cpus.available_cpus(root=wide) == allowed  # a quota never adds CPUs


def test_threads_per_process_divides_the_cpus_and_keeps_the_users_choice(tmp_path):
    two = _cgroup(tmp_path, {"cpu.max": "200000 100000\n"})
    expected = min(2, len(os.sched_getaffinity(0)))
    assert cpus.threads_per_process(processes=1, environ={}, root=two) == expected
    assert cpus.threads_per_process(processes=4, environ={}, root=two) == 1
    chosen = {"OMP_NUM_THREADS": "3"}
    assert cpus.threads_per_process(processes=2, environ=chosen, root=two) == 3
    # not a positive integer: ignored, as OpenMP would not honour it either
    assert cpus.threads_per_process(processes=1, environ={"OMP_NUM_THREADS": "0"}, root=two) == (
        expected
    )


def test_quiet_openmp_sets_only_what_the_user_left_unset():
    environ = {"OMP_WAIT_POLICY": "ACTIVE"}
    added = cpus.quiet_openmp(environ)
    assert added == {"KMP_BLOCKTIME": "0"}
    assert environ == {"OMP_WAIT_POLICY": "ACTIVE", "KMP_BLOCKTIME": "0"}


def test_the_cli_quiets_openmp_before_a_command_runs(monkeypatch, capsys):
    from isoeps.cli.main import main

    for key in cpus.QUIET_OPENMP:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("OMP_WAIT_POLICY", "active")  # the user's choice is kept
    assert main(["methods", "list"]) == 0
    assert os.environ["OMP_WAIT_POLICY"] == "active"
    assert os.environ["KMP_BLOCKTIME"] == "0"
