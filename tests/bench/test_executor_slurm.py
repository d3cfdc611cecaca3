"""The SLURM executor on submitit's fallbacks: ``debug`` (in process) and ``local``
(subprocesses, as on a compute node). The dying method double lives in test_executor_ray."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from test_executor_ray import HERE, _rows, _run

from isoeps.bench.executors.slurm import SlurmExecutor, import_submitit, job_parameters
from isoeps.bench.runner import run_cell_payload
from isoeps.bench.spec import ResourcesSpec
from isoeps.errors import ConfigError, IsoepsError
from isoeps.results import load_cells


def test_missing_submitit_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)
    with pytest.raises(IsoepsError, match=r"pip install 'isoeps\[slurm\]'"):
        import_submitit()
    with pytest.raises(IsoepsError, match="needs submitit"):
        list(SlurmExecutor().map(run_cell_payload, [{"folder": "x"}]))


def test_job_parameters_follow_the_suite_resources():
    resources = ResourcesSpec(cpus=4, gpus=1, memory_gb=12, time_limit_min=90.5)
    assert job_parameters(resources, jobs=8, partition="gpu", extra={"slurm_account": "lab"}) == {
        "name": "isoeps-cell",
        "timeout_min": 91,
        "cpus_per_task": 4,
        "mem_gb": 12.0,
        "nodes": 1,
        "tasks_per_node": 1,
        "gpus_per_node": 1,
        "slurm_partition": "gpu",
        "slurm_array_parallelism": 8,
        "slurm_account": "lab",
    }
    plain = job_parameters(ResourcesSpec(), jobs=1, partition=None)
    assert "gpus_per_node" not in plain and "slurm_array_parallelism" not in plain
    assert plain["timeout_min"] == 24 * 60
    with pytest.raises(ConfigError, match="whole GPUs"):
        job_parameters(ResourcesSpec(gpus=0.5), jobs=1, partition=None)


def test_the_suite_runtime_selects_and_configures_the_executor():
    from isoeps.bench.executors import create_executor
    from isoeps.bench.spec import RuntimeSpec

    runtime = RuntimeSpec(
        executor="slurm", executor_options={"partition": "gpu", "cluster": "local"}
    )
    executor = create_executor(runtime)
    assert isinstance(executor, SlurmExecutor) and executor.options.cluster == "local"
    assert executor.parameters["slurm_partition"] == "gpu"
    with pytest.raises(ConfigError, match=r"executor_options\.partiton: unknown field"):
        create_executor(runtime.model_copy(update={"executor_options": {"partiton": "gpu"}}))


def test_debug_cluster_store_equals_the_local_store(tiny_suite, tmp_path):
    path = tiny_suite(budgets=[1, "public"], runtime={"results": str(tmp_path / "local")})
    spec, expanded, _ = _run(path)
    store = tmp_path / "slurm"
    executor = SlurmExecutor(cluster="debug", poll_s=0.01)
    _, _, summary = _run(path, [f"runtime.results={store}"], executor=executor)
    assert sorted(o.status for o in summary.ran) == ["finished"] * len(expanded)
    assert _rows(store).equals(_rows(Path(spec.runtime.results)))
    assert list((store / "slurm").iterdir())  # submitit's job folder is under the store


@pytest.mark.slow  # two rounds of job subprocesses that import torch: about 30 s here
def test_a_job_killed_mid_cell_is_resubmitted_then_recorded(tiny_suite, tmp_path, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    marker = tmp_path / "attempts.txt"
    path = tiny_suite(
        imports=["harness_plugin", "test_executor_ray"],
        budgets=[1],
        methods={
            "dies": {"method": "test-dying", "config": {"marker": str(marker)}},
            "lives": {"method": "test-mean-image"},
        },
    )
    executor = SlurmExecutor(cluster="local", max_retries=1, poll_s=0.2)
    spec, _, summary = _run(path, executor=executor)
    assert len(marker.read_text().split()) == 2  # the first job and one resubmission
    statuses = {r.method: r.status for r in load_cells(Path(spec.runtime.results)).itertuples()}
    assert statuses == {"dies": "failed", "lives": "finished"}
    assert "worker died: UncompletedJobError" in summary.failed[0]["reason"]
