"""What ``environment.json`` records: versions, git commit, device, host."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
import sys
from pathlib import Path
from typing import Any

_PACKAGES = (
    "isoeps",
    "torch",
    "numpy",
    "opacus",
    "prv-accountant",
    "dp-accounting",
    "diffusers",
    "transformers",
    "clean-fid",
    "open-clip-torch",
    "pywavelets",
)


def git_commit() -> str | None:
    """The commit of the isoeps checkout, or None outside a git work tree."""
    here = Path(__file__).resolve().parent
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = result.stdout.strip()
    if result.returncode != 0 or not commit:
        return None
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=no"],
        cwd=here,
        capture_output=True,
        text=True,
        timeout=5,
        check=False,
    ).stdout.strip()
    return commit + ("-dirty" if dirty else "")


def versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def collect(*, device: str) -> dict[str, Any]:
    env: dict[str, Any] = {
        "device": device,
        "host": platform.node(),
        "platform": platform.platform(),
        "isoeps_version": importlib.metadata.version("isoeps"),
        "git_commit": git_commit(),
        "versions": versions(),
    }
    if device.startswith("cuda"):
        import torch

        if torch.cuda.is_available():
            env["cuda_device"] = torch.cuda.get_device_name(0)
            env["cuda"] = torch.version.cuda
    return env
