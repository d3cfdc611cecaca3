"""Optional experiment trackers (the ``trackers`` extra): TensorBoard, W&B, MLflow.

They receive harness events only, read from a finished run folder: the cell's identity, the
privacy accounting (target and achieved epsilon, delta), the final metrics and the sample
grid. Never private-batch losses and never memorisation images. The driver calls
:meth:`Tracker.log_cell` after each cell, so trackers work with every executor.

Two things are uploaded only when opted in (``runtime.tracker_upload``), and labelled: the
sample grid of an ``inf`` cell (trained without clipping or noise: not DP) and metric values
marked not-DP (they read the private split), under ``not_dp/``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from isoeps.errors import ConfigError
from isoeps.results import folders


def upload_options(folder: Path) -> dict[str, bool]:
    """``runtime.tracker_upload`` as the cell ran (its ``config.yaml``); off if unknown."""
    import yaml

    try:
        config = yaml.safe_load((Path(folder) / folders.CONFIG).read_text()) or {}
        upload = (config.get("runtime") or {}).get("tracker_upload") or {}
    except (OSError, ValueError, AttributeError, yaml.YAMLError):
        upload = {}
    return {
        "inf_samples": upload.get("inf_samples") is True,
        "not_dp": upload.get("not_dp") is True,
    }


def cell_event(folder: Path, upload: Any = None) -> dict[str, Any]:
    """The harness event of one run folder: identity, privacy, metrics, grid path.

    ``upload`` (a ``TrackerUploadSpec`` or mapping; default: the cell's own config) opts in
    to the grids of ``inf`` cells and to not-DP values.

    Args:
        folder: the run folder.
        upload: see above.

    Returns:
        ``name``, ``params``, ``scalars``, ``grid`` (None when not uploaded) and
        ``grid_label``.
    """
    folder = Path(folder)
    if upload is None:
        upload = upload_options(folder)
    elif not isinstance(upload, dict):
        upload = upload.model_dump()
    cell = folders.read_json(folder / folders.CELL)
    status = folders.status_of(folder) or {}
    privacy = (
        folders.read_json(folder / folders.PRIVACY) if (folder / folders.PRIVACY).is_file() else {}
    )
    metrics = (
        folders.read_json(folder / folders.METRICS) if (folder / folders.METRICS).is_file() else {}
    )
    scalars = {}
    for value in metrics.get("values", []):
        if value.get("not_dp"):
            if value.get("metric") == "mem" or not upload.get("not_dp"):
                continue  # not-DP numbers stay in the store unless opted in; memorisation always
            scalars[f"not_dp/metrics/{value['name']}"] = float(value["value"])
            continue
        scalars[f"metrics/{value['name']}"] = float(value["value"])
    achieved = privacy.get("epsilon_achieved")
    if achieved is not None and not (isinstance(achieved, str) or math.isinf(float(achieved))):
        scalars["privacy/epsilon_achieved"] = float(achieved)
    not_dp = cell["budget"] == "inf"
    grid = folder / folders.GRID if (folder / folders.GRID).is_file() else None
    if not_dp and not upload.get("inf_samples"):
        grid = None
    return {
        "name": folder.name,
        "params": {
            "cell_id": cell["cell_id"],
            "dataset": cell["dataset_label"],
            "method": cell["method_label"],
            "budget": cell["budget"],
            "seed": cell["seed"],
            "n_samples": cell["n_samples"],
            "status": status.get("status"),
            "delta": privacy.get("delta"),
            "accountant": privacy.get("accountant"),
            "adjacency": privacy.get("adjacency"),
            "dp": not not_dp,
        },
        "scalars": scalars,
        "grid": grid,
        #: The name the grid is uploaded under: an ``inf`` cell's says it is not DP.
        "grid_label": "samples_not_dp_inf" if not_dp else "samples",
    }


class Tracker:
    name = "tracker"

    def __init__(self, *, directory: Path, project: str, upload: Any = None) -> None:
        self.directory = Path(directory)
        self.project = project
        #: ``runtime.tracker_upload``; None: each cell's own (from its config.yaml).
        self.upload = upload

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

        event = cell_event(folder, self.upload)
        writer = SummaryWriter(log_dir=str(self.directory / "tensorboard" / event["name"]))
        try:
            writer.add_text("cell", json.dumps(event["params"], default=str))
            for key, value in event["scalars"].items():
                writer.add_scalar(key, value, 0)
            if event["grid"] is not None:
                import numpy as np
                from PIL import Image

                image = np.asarray(Image.open(event["grid"]).convert("RGB"))
                writer.add_image(event["grid_label"], image, 0, dataformats="HWC")
        finally:
            writer.close()


class WandbTracker(Tracker):
    name = "wandb"

    def log_cell(self, folder: Path) -> None:
        wandb = _require("wandb")
        event = cell_event(folder, self.upload)
        run = wandb.init(
            project=self.project,
            name=event["name"],
            config=event["params"],
            dir=str(self.directory),
            reinit=True,
        )
        try:
            payload: dict[str, Any] = dict(event["scalars"])
            if event["grid"] is not None:
                payload[event["grid_label"]] = wandb.Image(str(event["grid"]))
            run.log(payload)
        finally:
            run.finish()


class MLflowTracker(Tracker):
    name = "mlflow"

    def log_cell(self, folder: Path) -> None:
        mlflow = _require("mlflow")
        event = cell_event(folder, self.upload)
        mlflow.set_experiment(self.project)
        with mlflow.start_run(run_name=event["name"]):
            mlflow.log_params({k: str(v) for k, v in event["params"].items()})
            mlflow.log_metrics({k.replace("/", "."): v for k, v in event["scalars"].items()})
            if event["grid"] is not None:
                mlflow.log_artifact(str(event["grid"]), artifact_path=event["grid_label"])


def create_trackers(
    names: list[str], *, directory: Path, project: str, upload: Any = None
) -> list[Tracker]:
    """One tracker per registered name, writing under ``directory`` for ``project``.

    Args:
        names: the trackers' registered names.
        directory: where trackers write.
        project: the project name trackers log under.
        upload: the upload options every tracker gets; None for each cell's own.

    Returns:
        The trackers.

    Raises:
        ConfigError: a name is unknown or its plugin cannot be loaded.
    """
    from isoeps import registry

    out = []
    for name in names:
        try:
            tracker_class = registry.get("isoeps.trackers", name)
        except Exception as exc:  # noqa: BLE001 (unknown name or broken plugin: one message)
            raise ConfigError(f"runtime.trackers: {exc}") from None
        tracker = tracker_class(directory=directory, project=project)
        tracker.upload = upload
        out.append(tracker)
    return out
