"""The cache root and the file lock that guards expensive cached artefacts.

Everything isoeps caches (public models, reference features, preprocessed tensors, weights)
lives under :func:`cache_dir`: ``$ISOEPS_CACHE_DIR`` if set, else the platform user cache
folder (``~/.cache/isoeps`` on Linux). Nothing is ever written to the system temp folder.

isoeps deletes only a cache root it marked as its own (:data:`MARKER`, written when isoeps
creates the root, or adopts an empty one), and only the kinds in :data:`KINDS`: a mistyped
``$ISOEPS_CACHE_DIR`` pointing at a folder of yours is never emptied.
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

from isoeps.errors import ConfigError, UnknownNameError

ENV_VAR = "ISOEPS_CACHE_DIR"

#: Marks a cache root as isoeps's own: :func:`clear` refuses a root without it.
MARKER = ".isoeps-cache"

#: Every kind of cached artefact isoeps writes (the first argument of :func:`cache_path`).
KINDS = ("datasets", "evaluators", "public-models", "reference-features", "weights")


def cache_dir() -> Path:
    """The cache root (created if missing, and then marked as isoeps's own)."""
    override = os.environ.get(ENV_VAR)
    if override:
        root = Path(override).expanduser()
    else:
        import platformdirs

        root = Path(platformdirs.user_cache_dir("isoeps", appauthor=False))
    marker = root / MARKER
    if not marker.is_file():
        try:
            root.mkdir(parents=True)
            adopt = True
        except NotADirectoryError:
            raise ConfigError(f"the cache root {root} (${ENV_VAR}) is under a file") from None
        except FileExistsError:
            if not root.is_dir():
                raise ConfigError(f"the cache root {root} (${ENV_VAR}) is not a folder") from None
            # an existing folder is adopted only when empty, or at the default location
            # (named for isoeps); a folder of yours named by a typo is not
            adopt = not override or not any(root.iterdir())
        if adopt:
            with contextlib.suppress(OSError):  # read-only: nothing will be cleared either
                marker.write_text(
                    "isoeps cache root: `isoeps cache clear` may delete what is here\n"
                )
    return root


def cache_path(kind: str, key: str) -> Path:
    """The folder for one cached artefact of ``kind`` (e.g. ``"public-models"``) under ``key``.

    Args:
        kind: the kind of artefact; a plain folder name.
        key: the artefact's key; a plain folder name.

    Returns:
        ``<cache dir>/<kind>/<key>`` (not created).

    Raises:
        ConfigError: ``kind`` or ``key`` is empty, ``.``/``..``, or holds a path separator.
    """
    for name, value in (("kind", kind), ("key", key)):
        if not value or value in (".", "..") or "/" in value or "\\" in value:
            raise ConfigError(f"cache {name} must be a plain folder name, got {value!r}")
    return cache_dir() / kind / key


def content_key(payload: Any, *, length: int = 16) -> str:
    """A stable short hash of a JSON-serialisable payload (sorted keys).

    Args:
        payload: what the key covers; values JSON cannot encode are taken as ``str``.
        length: how many hex characters to keep.

    Returns:
        The first ``length`` hex characters of the SHA-256 of the payload's JSON.
    """
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:length]


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file's bytes (hex): the content key of weights read from disk.

    Args:
        path: the file.

    Returns:
        Its 64-character hex digest.
    """
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@contextlib.contextmanager
def file_lock(path: Path, *, timeout: float = -1) -> Iterator[None]:
    """Hold an inter-process lock on ``path`` + ``.lock``.

    Parallel cells that need the same public model take this lock, check whether the model
    is already cached, and train it only if not; so a model is never trained twice.

    Args:
        path: the guarded path; the lock file is created beside it, with its folder.
        timeout: seconds to wait for the lock; negative waits for ever.

    Raises:
        filelock.Timeout: the lock was not acquired within ``timeout``.
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


def clear_target(kind: str | None = None) -> Path:
    """What :func:`clear` would delete (the root, or one kind's folder), checked: the kind is
    one of :data:`KINDS` and the root carries isoeps's marker. Raises ConfigError otherwise."""
    if kind is not None and kind not in KINDS:
        raise UnknownNameError(f"unknown cache kind {kind!r}; known: {', '.join(KINDS)}")
    root = cache_dir()
    if not (root / MARKER).is_file():
        raise ConfigError(
            f"{root} (${ENV_VAR} or the default cache folder) was not created by isoeps (no "
            f"{MARKER} marker), so isoeps will not delete anything in it; check ${ENV_VAR}, "
            "or delete the folder yourself"
        )
    return root / kind if kind else root


def clear(kind: str | None = None) -> int:
    """Remove the whole cache, or one kind of artefact. Returns the bytes freed.

    Only a marked cache root is touched (see :func:`clear_target`); its marker stays."""
    target = clear_target(kind)
    if not target.exists():
        return 0
    doomed = [target] if kind else [c for c in target.iterdir() if c.name != MARKER]
    freed = sum(_size(path) for path in doomed)
    for path in doomed:
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
    return freed


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
