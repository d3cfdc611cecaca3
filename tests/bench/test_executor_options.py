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
        create_executor(RuntimeSpec.model_construct(executor="local", jobs=0,
                                                     executor_options={}, resources=None))
