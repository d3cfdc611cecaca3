"""Harness test set-up: the test doubles module (``harness_plugin``) is importable in-process
(pytest's rootdir import puts this folder on the path), in spawned workers (multiprocessing
passes the path on) and in ``isoeps`` subprocesses through :func:`plugin_env`'s PYTHONPATH; a
suite registers the doubles with ``imports: [harness_plugin]``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.fixture
def plugin_env() -> dict[str, str]:
    """Environment for ``isoeps`` subprocesses that must import the test doubles."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(HERE), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["CI"] = "true"
    return env


@pytest.fixture
def tiny_suite(tmp_path: Path):
    """Write a tiny suite YAML (keyword arguments replace top-level keys); returns its path."""
    import harness_plugin

    def make(**overrides) -> Path:
        overrides.setdefault("runtime", {"results": str(tmp_path / "results")})
        path = tmp_path / "suite.yaml"
        path.write_text(harness_plugin.suite_yaml(**overrides))
        return path

    return make
