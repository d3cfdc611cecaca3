"""Executor options are strict for every executor, the local one included."""

from __future__ import annotations

import pytest

from isoeps.bench.runner import create_executor
from isoeps.bench.spec import RuntimeSpec
from isoeps.errors import ConfigError


def test_local_executor_rejects_a_misspelt_option():
    runtime = RuntimeSpec(executor="local", executor_options={"jbos": 2})
    with pytest.raises(ConfigError, match="unknown option.*local executor: jbos"):
        create_executor(runtime)


def test_local_executor_rejects_zero_jobs():
    with pytest.raises(ConfigError, match="--jobs must be >= 1"):
        create_executor(
            RuntimeSpec.model_construct(
                executor="local", jobs=0, executor_options={}, resources=None
            )
        )


def test_parallel_cells_share_the_cores():
    import os

    import torch

    from isoeps.bench.runner import share_cpu_threads

    before = torch.get_num_threads()
    try:
        share_cpu_threads(2)
        assert torch.get_num_threads() == max(1, (os.cpu_count() or 1) // 2)
        share_cpu_threads(1)  # one cell at a time keeps torch's own choice
        assert torch.get_num_threads() == max(1, (os.cpu_count() or 1) // 2)
    finally:
        torch.set_num_threads(before)
