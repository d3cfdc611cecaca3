"""Session-wide test set-up: an isolated cache root and a quiet, deterministic torch."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    # Tests never touch the user's cache; one root per session lets slow fixtures share models.
    os.environ["ISOEPS_CACHE_DIR"] = str(tmp_path_factory.mktemp("isoeps-cache"))
