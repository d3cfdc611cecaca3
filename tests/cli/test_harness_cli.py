"""The harness commands' CLI surface: help, suites, methods, errors and exit codes."""

from __future__ import annotations

import json
import subprocess
import sys


def isoeps(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "isoeps.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
        check=False,
    )


def test_harness_commands_are_listed():
    result = isoeps("--help")
    for command in ("run", "cell", "prepare", "config", "methods", "results", "report", "regress"):
        assert command in result.stdout, command


def test_config_show_quick_resolves_with_overrides():
    result = isoeps("config", "show", "quick", "budgets=[1]", "--set", "seeds=[3]", "--json")
    assert result.returncode == 0, result.stderr
    suite = json.loads(result.stdout)["suite"]
    assert suite["budgets"] == [1.0] and suite["seeds"] == [3]
    assert suite["datasets"]["faces"]["n"]["private"] >= 20000


def test_unknown_suite_is_a_config_error():
    result = isoeps("config", "show", "no-such-suite")
    assert result.returncode == 2 and "unknown suite 'no-such-suite'" in result.stderr


def test_cell_needs_its_flags():
    result = isoeps("cell", "--method", "wavelet-two-stage")
    assert result.returncode == 2 and "--dataset" in result.stderr


def test_report_of_empty_store(tmp_path):
    (tmp_path / "results" / "runs").mkdir(parents=True)
    result = isoeps(
        "report", "--results", tmp_path / "results", "--reports", tmp_path / "r", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "No finished cells yet" in (tmp_path / "r" / "index.md").read_text()
