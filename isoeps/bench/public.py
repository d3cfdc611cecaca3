"""Public pretraining, cached and shared across budgets and seeds.

The cache key is the method's :meth:`public_cache_key` plus the public split's content
fingerprint. Training runs in a fresh instance of the method whose context is derived from the
config's ``pretrain_seed`` alone (:meth:`MethodContext.for_public`), so no cell's seed reaches
a model that every cell shares, and every cell, the one that trained included, loads the
model from the cache. A file lock makes parallel cells (or ``isoeps prepare``) train one
model once: the first takes the lock and trains, the others wait and then load.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from isoeps.cache import cache_path, content_key, file_lock
from isoeps.cache_bundle import seed_from_shipped
from isoeps.errors import ConfigError
from isoeps.log import get_logger

log = get_logger("bench.public")

KIND = "public-models"
DONE = "DONE"
#: What the cached folder was trained for, checked on every load.
KEY_FILE = "public_key.json"


def _key_payload(method: Any, public: Any) -> dict[str, Any]:
    return json.loads(
        json.dumps(
            {"method": method.public_cache_key(), "public": public.fingerprint()}, default=str
        )
    )


def public_key(method: Any, public: Any) -> str:
    """The cache key of ``method``'s public models trained on ``public`` (nothing trained).

    Args:
        method: the method, configured.
        public: the public split.

    Returns:
        The key: the folder name under the ``public-models`` cache kind.
    """
    return content_key(_key_payload(method, public))


def prepare_public(method: Any, public: Any) -> str:
    """Load the method's public model(s) from the cache, training them first if missing.

    Args:
        method: the cell's method; its public models are loaded in place.
        public: the public split.

    Returns:
        The cache key (recorded in the run folder).
    """
    payload = _key_payload(method, public)
    key = content_key(payload)
    path = cache_path(KIND, key)
    with file_lock(path):
        if not _complete(path):
            seed_from_shipped(KIND, key)
        if not _complete(path):
            _train(method, public, payload, key, path)  # a folder from before keys: retrain
    _check_key(path, payload)
    method.load_public(Path(path))
    return key


def _complete(path: Path) -> bool:
    return (path / DONE).is_file() and (path / KEY_FILE).is_file()


def _train(method: Any, public: Any, payload: dict[str, Any], key: str, path: Path) -> None:
    log.info(
        "pretraining %s on public data (%d images); cache key %s", method.name, len(public), key
    )
    started = time.time()
    staging = path.with_name(f".{key}.staging")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    trainer = type(method)(method.config, ctx=method.ctx.for_public(method.config.pretrain_seed))
    trainer.pretrain_public(public)
    trainer.save_public(staging)
    (staging / KEY_FILE).write_text(json.dumps(payload, indent=2, sort_keys=True))
    (staging / DONE).write_text(f"{time.time() - started:.1f}\n")
    shutil.rmtree(path, ignore_errors=True)
    staging.rename(path)


def _check_key(path: Path, payload: dict[str, Any]) -> None:
    key_file = path / KEY_FILE
    try:
        stored = json.loads(key_file.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{key_file}: not JSON ({err})") from err
    if stored != payload:
        raise ConfigError(
            f"{key_file}: the cached public model was trained for another config or public "
            f"split than this cell's; `isoeps cache clear --yes` and rerun"
        )
