"""Optional experiment trackers (the ``trackers`` extra): TensorBoard, W&B, MLflow.

They receive harness events only, read from a finished run folder: the cell's identity, the
privacy accounting (target and achieved epsilon, delta), the final metrics and the sample
grid. Never private-batch losses and never memorisation images. The driver calls
:meth:`Tracker.log_cell` after each cell, so trackers work with every executor.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from isoeps.errors import ConfigError
from isoeps.results import folders


def cell_event(folder: Path) -> dict[str, Any]:
    """The harness event of one run folder: identity, privacy, metrics, grid path."""
    folder = Path(folder)
    cell = folders.read_json(folder / folders.CELL)
    status = folders.status_of(folder) or {}
    privacy = folders.read_json(folder / folders.PRIVACY) if (folder / folders.PRIVACY).is_file() else {}
    metrics = folders.read_json(folder / folders.METRICS) if (folder / folders.METRICS).is_file() else {}
    scalars = {}
    for value in metrics.get("values", []):
        if value.get("not_dp") and value.get("metric") == "mem":
            continue  # memorisation numbers stay in the store, not in third-party trackers
        scalars[f"metrics/{value['name']}"] = float(value["value"])
    achieved = privacy.get("epsilon_achieved")
    if achieved is not None and not (isinstance(achieved, str) or math.isinf(float(achieved))):
        scalars["privacy/epsilon_achieved"] = float(achieved)
    return {
        "name": folder.name,
        "params": {"cell_id": cell["cell_id"], "dataset": cell["dataset_label"],
                   "method": cell["method_label"], "budget": cell["budget"], "seed": cell["seed"],
                   "n_samples": cell["n_samples"], "status": status.get("status"),
                   "delta": privacy.get("delta"), "accountant": privacy.get("accountant")},
        "scalars": scalars,
        "grid": folder / folders.GRID if (folder / folders.GRID).is_file() else None,
    }


class Tracker:
    name = "tracker"

    def __init__(self, *, directory: Path, project: str) -> None:
        self.directory = Path(directory)
        self.project = project

    def log_cell(self, folder: Path) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Flush; called once when the suite ends."""


def _require(module: str, extra: str = "trackers") -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"runtime.trackers needs {module!r}: pip install 'isoeps[{extra}]'"
        ) from None


class TensorBoardTracker(Tracker):
    name = "tensorboard"

    def log_cell(self, folder: Path) -> None:
        _require("tensorboard")
        from torch.utils.tensorboard import SummaryWriter

        event = cell_event(folder)
        writer = SummaryWriter(log_dir=str(self.directory / "tensorboard" / event["name"]))
        try:
            writer.add_text("cell", json.dumps(event["params"], default=str))
            for key, value in event["scalars"].items():
                writer.add_scalar(key, value, 0)
            if event["grid"] is not None:
                import numpy as np
                from PIL import Image

                image = np.asarray(Image.open(event["grid"]).convert("RGB"))
                writer.add_image("samples", image, 0, dataformats="HWC")
        finally:
            writer.close()


class WandbTracker(Tracker):
    name = "wandb"

    def log_cell(self, folder: Path) -> None:
        wandb = _require("wandb")
        event = cell_event(folder)
        run = wandb.init(project=self.project, name=event["name"], config=event["params"],
                         dir=str(self.directory), reinit=True)
        try:
            payload: dict[str, Any] = dict(event["scalars"])
            if event["grid"] is not None:
                payload["samples"] = wandb.Image(str(event["grid"]))
            run.log(payload)
        finally:
            run.finish()


class MLflowTracker(Tracker):
    name = "mlflow"

    def log_cell(self, folder: Path) -> None:
        mlflow = _require("mlflow")
        event = cell_event(folder)
        mlflow.set_experiment(self.project)
        with mlflow.start_run(run_name=event["name"]):
            mlflow.log_params({k: str(v) for k, v in event["params"].items()})
            mlflow.log_metrics({k.replace("/", "."): v for k, v in event["scalars"].items()})
            if event["grid"] is not None:
                mlflow.log_artifact(str(event["grid"]))


def create_trackers(names: list[str], *, directory: Path, project: str) -> list[Tracker]:
    from isoeps import registry

    out = []
    for name in names:
        try:
            tracker_class = registry.get("isoeps.trackers", name)
        except Exception as exc:  # noqa: BLE001 (unknown name or broken plugin: one message)
            raise ConfigError(f"runtime.trackers: {exc}") from None
        out.append(tracker_class(directory=directory, project=project))
    return out
