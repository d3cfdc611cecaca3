"""The cache root and the file lock that guards expensive cached artefacts.

Everything isoeps caches (public models, reference features, preprocessed tensors, weights)
lives under :func:`cache_dir`: ``$ISOEPS_CACHE_DIR`` if set, else the platform user cache
folder (``~/.cache/isoeps`` on Linux). Nothing is ever written to the system temp folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ENV_VAR = "ISOEPS_CACHE_DIR"


def cache_dir() -> Path:
    """The cache root (created if missing)."""
    override = os.environ.get(ENV_VAR)
    if override:
        root = Path(override).expanduser()
    else:
        import platformdirs

        root = Path(platformdirs.user_cache_dir("isoeps", appauthor=False))
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_path(kind: str, key: str) -> Path:
    """The folder for one cached artefact of ``kind`` (e.g. ``"public-models"``) under ``key``."""
    return cache_dir() / kind / key


def content_key(payload: Any, *, length: int = 16) -> str:
    """A stable short hash of a JSON-serialisable payload (sorted keys)."""
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


@contextlib.contextmanager
def file_lock(path: Path, *, timeout: float = -1) -> Iterator[None]:
    """Hold an inter-process lock on ``path`` + ``.lock``.

    Parallel cells that need the same public model take this lock, check whether the model
    is already cached, and train it only if not; so a model is never trained twice.
    """
    from filelock import FileLock

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=timeout):
        yield


def entries() -> list[dict[str, Any]]:
    """One row per cached artefact: kind, key, size in bytes."""
    root = cache_dir()
    rows = []
    for kind_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        for entry in sorted(kind_dir.iterdir()):
            if entry.name.endswith(".lock"):
                continue
            rows.append({"kind": kind_dir.name, "key": entry.name, "bytes": _size(entry)})
    return rows


def total_size() -> int:
    return _size(cache_dir())


def clear(kind: str | None = None) -> int:
    """Remove the whole cache, or one kind of artefact. Returns the bytes freed."""
    target = cache_dir() / kind if kind else cache_dir()
    if not target.exists():
        return 0
    freed = _size(target)
    if kind:
        shutil.rmtree(target)
    else:
        for child in target.iterdir():
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    return freed


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
