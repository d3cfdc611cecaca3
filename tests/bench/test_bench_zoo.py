"""The shipped checkpoints (isoeps/zoo): every entry matches its model card, the bundle stays
small, and the demo suite's public models are among them, so that a fresh clone's main job
trains none. A failure here after a change to a public recipe or config means: run `make zoo`
(docs/checkpoints.md)."""

from __future__ import annotations

import pytest

from isoeps.cache_bundle import EXPORTABLE, SHIPPED, read_card

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
