"""Executor options are strict for every executor, the local one included."""

from __future__ import annotations

import pytest

from isoeps.bench.runner import create_executor
from isoeps.bench.spec import RuntimeSpec
from isoeps.errors import ConfigError


def test_local_executor_rejects_a_misspelt_option():
    runtime = RuntimeSpec(executor="local", executor_options={"jbos": 2})
    with pytest.raises(ConfigError) as info:
        create_executor(runtime)
    assert str(info.value) == (
        "runtime.executor_options.jbos: unknown field of the local executor; known fields: (none)"
    )


@pytest.mark.parametrize(
    ("executor", "options", "message"),
    [
        (
            "ray",
            {"adress": "auto"},
            (
                "runtime.executor_options.adress: unknown field of the ray executor; "
                "known fields: address, max_retries, num_cpus, runtime_env"
            ),
        ),
        ("ray", {"max_retries": -1}, "runtime.executor_options.max_retries: "),
        ("ray", {"num_cpus": "many"}, "runtime.executor_options.num_cpus: "),
        (
            "slurm",
            {"partiton": "gpu"},
            (
                "runtime.executor_options.partiton: unknown field of the slurm executor; "
                "known fields: cluster, folder, partition, max_retries, poll_s, slurm_options"
            ),
        ),
        ("slurm", {"poll_s": 0}, "runtime.executor_options.poll_s: "),
    ],
)
def test_every_executor_names_the_option_at_fault(executor, options, message):
    # building an executor imports neither ray nor submitit: these run without them
    runtime = RuntimeSpec(executor=executor, executor_options=options)
    with pytest.raises(ConfigError) as info:
        create_executor(runtime)
    assert str(info.value).startswith(message), str(info.value)


def test_executor_options_are_typed_and_frozen():
    import pydantic

    from isoeps import registry

    for name in ("local", "ray", "slurm"):
        executor_class = registry.get("isoeps.executors", name)
        assert executor_class.Options.model_config["extra"] == "forbid", name
        executor = create_executor(RuntimeSpec(executor=name))
        assert isinstance(executor.options, executor_class.Options)
        with pytest.raises(pydantic.ValidationError):
            executor.options.anything = 1
    ray = create_executor(
        RuntimeSpec(executor="ray", executor_options={"address": "auto", "max_retries": 0})
    )
    assert (ray.options.address, ray.options.max_retries, ray.options.num_cpus) == ("auto", 0, None)


def test_local_executor_rejects_zero_jobs():
    with pytest.raises(ConfigError, match=r"runtime\.jobs: --jobs must be >= 1"):
        create_executor(
            RuntimeSpec.model_construct(
                executor="local", jobs=0, executor_options={}, resources=None
            )
        )


def test_parallel_cells_share_the_cores(monkeypatch):
    import torch

    from isoeps.bench.runner import share_cpu_threads
    from isoeps.cpus import available_cpus

    before = torch.get_num_threads()
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    try:
        share_cpu_threads(2)
        assert torch.get_num_threads() == max(1, available_cpus() // 2)
        share_cpu_threads(1)
        assert torch.get_num_threads() == available_cpus()
        monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the user's choice wins
        share_cpu_threads(1)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)
