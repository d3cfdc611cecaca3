"""The shipped checkpoints (isoeps/zoo): every entry matches its model card, the bundle stays
small, and the demo suite's public models are among them, so that a fresh clone's main job
trains none. A failure here after a change to a public recipe or config means: run `make zoo`
(docs/checkpoints.md)."""

from __future__ import annotations

import pytest

from isoeps.cache_bundle import EXPORTABLE, SHIPPED, read_card
from isoeps.testing import tiny_config, tiny_split

MAX_BYTES = 50_000_000


def _entries():
    return [
        entry
        for kind in EXPORTABLE
        for entry in sorted((SHIPPED / kind).iterdir() if (SHIPPED / kind).is_dir() else [])
    ]


def test_every_shipped_entry_matches_its_card_and_the_bundle_is_small():
    entries = _entries()
    assert entries, f"{SHIPPED}: no shipped checkpoints"
    size = 0
    for entry in entries:
        card = read_card(entry)
        size += sum(meta["bytes"] for meta in card["files"].values())
    assert size <= MAX_BYTES


@pytest.fixture(scope="module")
def demo_public_keys() -> dict[str, str]:
    from isoeps.bench.cell_flow import build_method
    from isoeps.bench.cells import expand
    from isoeps.bench.data import load_cell_data
    from isoeps.bench.public import public_key
    from isoeps.bench.spec import load_suite

    cells = expand(load_suite("demo"))
    data = load_cell_data(cells[0].dataset)
    return {cell.method_label: public_key(build_method(cell), data.public) for cell in cells}


def test_the_demo_suites_public_models_are_shipped(demo_public_keys):
    shipped = {entry.name for entry in (SHIPPED / "public-models").iterdir()}
    missing = {m: k for m, k in demo_public_keys.items() if k not in shipped}
    assert not missing, f"the demo's public models {missing} are not shipped: run `make zoo`"


def _trained_files(method_name: str, public, cache_root) -> dict[str, str]:
    """Train ``method_name``'s public models into a fresh cache; each file's sha256 by name
    (``DONE`` holds the training time, the one file that may differ)."""
    from isoeps import registry
    from isoeps.bench.public import DONE, KIND, prepare_public
    from isoeps.cache import file_sha256
    from isoeps.methods.base import MethodContext

    method_class = registry.get("isoeps.methods", method_name)
    method = method_class(tiny_config(method_name), ctx=MethodContext(seed=0, show_progress=False))
    key = prepare_public(method, public)
    folder = cache_root / KIND / key
    return {
        str(path.relative_to(folder)): file_sha256(path)
        for path in sorted(folder.rglob("*"))
        if path.is_file() and path.name != DONE
    }


@pytest.mark.parametrize(
    ("method_name", "resolution"),
    [("wavelet-two-stage", 32), ("dpagg-ti", 8), ("private-evolution", 8), ("dp-ldm", 8)],
)
def test_a_short_retrain_from_the_same_seed_is_bit_identical(
    method_name, resolution, tmp_path, monkeypatch
):
    """What `isoeps prepare --retrain` rebuilds is the shipped file, byte for byte: each public
    family (the AR family with its tokenizer and SR net; the text-to-image UNet; DP-LDM's
    autoencoder and latent UNet) trained twice from the config's seed, into two caches."""

    public = tiny_split("public", n=120 if resolution == 32 else 16, resolution=resolution)
    runs = []
    for name in ("first", "second"):
        monkeypatch.setenv("ISOEPS_CACHE_DIR", str(tmp_path / name))
        runs.append(_trained_files(method_name, public, tmp_path / name))
    assert len(runs[0]) >= 2 and runs[0] == runs[1]
