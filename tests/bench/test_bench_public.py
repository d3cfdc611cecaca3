"""Public pretraining through the harness's cache: the model a cell gets depends on the
config's ``pretrain_seed`` and the public split alone, never on which cell trained it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from isoeps.bench.public import KEY_FILE, prepare_public
from isoeps.cache import ENV_VAR
from isoeps.errors import ConfigError
from isoeps.methods.base import MethodContext
from isoeps.methods.dpagg_ti import DPAggTI
from isoeps.testing import tiny_config, tiny_split

TINY = tiny_config("dpagg-ti")


def _cell_method(seed: int, **config) -> DPAggTI:
    return DPAggTI({**TINY, **config}, ctx=MethodContext(seed=seed, show_progress=False))


def _unet_state(method: DPAggTI) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in method.model.unet.state_dict().items()}


def _cached_model(cache: Path, monkeypatch, order: list[int], **config) -> dict:
    monkeypatch.setenv(ENV_VAR, str(cache))
    public = tiny_split("public", n=16)
    states = []
    for seed in order:
        method = _cell_method(seed, **config)
        prepare_public(method, public)
        states.append(_unet_state(method))
    for state in states[1:]:
        assert all(torch.equal(state[k], states[0][k]) for k in state)
    return states[0]


def test_cells_of_any_seed_order_get_the_same_public_model(tmp_path, monkeypatch) -> None:
    first = _cached_model(tmp_path / "a", monkeypatch, order=[1, 0])
    second = _cached_model(tmp_path / "b", monkeypatch, order=[0, 1])
    assert first.keys() == second.keys()
    assert all(torch.equal(first[k], second[k]) for k in first)


def test_the_public_seed_is_part_of_the_key(tmp_path, monkeypatch) -> None:
    seed0 = _cached_model(tmp_path / "a", monkeypatch, order=[0])
    seed1 = _cached_model(tmp_path / "b", monkeypatch, order=[0], pretrain_seed=1)
    assert any(not torch.equal(seed0[k], seed1[k]) for k in seed0)


def test_a_cached_model_for_another_key_is_refused_naming_the_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(ENV_VAR, str(tmp_path))
    public = tiny_split("public", n=16)
    prepare_public(_cell_method(0), public)
    (key_file,) = tmp_path.rglob(KEY_FILE)
    payload = json.loads(key_file.read_text())
    payload["method"]["config"]["pretrain_steps"] = 99
    key_file.write_text(json.dumps(payload))
    with pytest.raises(ConfigError, match=KEY_FILE):
        prepare_public(_cell_method(0), public)


def test_an_exported_cards_public_metrics_are_its_public_cells(tiny_suite, tmp_path, monkeypatch):
    """`cache export --metrics-from`: a public model's card quotes what the store's `public`
    cells on that model scored, and only those."""
    from isoeps.bench import cells
    from isoeps.bench.runner import run_suite
    from isoeps.bench.spec import load_suite
    from isoeps.cache_bundle import export_entries
    from isoeps.results import load, public_cells

    monkeypatch.setenv(ENV_VAR, str(tmp_path / "cache"))
    spec = load_suite(tiny_suite(budgets=[1, "public"], seeds=[0, 1]))
    store = Path(spec.runtime.results)
    run_suite(cells.expand(spec), store=store, runtime=spec.runtime)
    scores = public_cells(store)
    (card,) = export_entries(tmp_path / "bundle", kinds=["public-models"], public_metrics=scores)
    quoted = {(c["seed"], c["cell_id"]): c["metrics"] for c in card["public_metrics"]}
    frame = load(store)
    public = frame[frame["budget"] == "public"]
    assert len(quoted) == 2 == public["cell_id"].nunique()
    for row in public.itertuples():
        assert quoted[(row.seed, row.cell_id)][row.metric]["value"] == row.value
