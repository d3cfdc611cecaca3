"""Bundles of cached public models with model cards: export, checked import, and the shipped
bundle that a cache miss consults before training."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from isoeps import cache_bundle
from isoeps.bench.public import prepare_public
from isoeps.cache import ENV_VAR, cache_path
from isoeps.errors import ConfigError, DataError
from isoeps.methods.base import MethodContext
from isoeps.methods.dpagg_ti import DPAggTI
from isoeps.testing import tiny_config, tiny_split

TINY = tiny_config("dpagg-ti")


def _method(**config) -> DPAggTI:
    return DPAggTI({**TINY, **config}, ctx=MethodContext(seed=0, show_progress=False))


def _trained_bundle(tmp_path: Path, monkeypatch) -> tuple[Path, str, DPAggTI]:
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "cache-a"))
    method = _method()
    key = prepare_public(method, tiny_split("public", n=16))
    bundle = tmp_path / "bundle"
    cards = cache_bundle.export_entries(bundle, kinds=["public-models"])
    assert [card["key"] for card in cards] == [key]
    return bundle, key, method


def _state(method: DPAggTI) -> dict[str, torch.Tensor]:
    return method.model.unet.state_dict()


def test_an_exported_bundle_imports_into_another_cache_with_its_card(tmp_path, monkeypatch):
    bundle, key, trained = _trained_bundle(tmp_path, monkeypatch)
    card = json.loads((bundle / "public-models" / key / "card.json").read_text())
    assert card["kind"] == "public-models" and card["key"] == key
    assert card["trained_for"]["public_key.json"]["public"]  # the public-data fingerprint
    assert card["training_seconds"] > 0 and card["exported_by"]["torch"] == torch.__version__
    assert all(len(meta["sha256"]) == 64 for meta in card["files"].values())

    monkeypatch.setenv(ENV_VAR, str(tmp_path / "cache-b"))
    assert [c["key"] for c in cache_bundle.import_entries(bundle)] == [key]
    assert cache_bundle.import_entries(bundle) == []  # already there: kept, not copied again
    assert not (cache_path("public-models", key) / "card.json").exists()
    loaded = _method()
    prepare_public(loaded, tiny_split("public", n=16))
    state = _state(trained)
    assert all(torch.equal(state[k], _state(loaded)[k]) for k in state)


def test_a_tampered_bundle_imports_nothing_and_names_the_file(tmp_path, monkeypatch):
    bundle, key, _ = _trained_bundle(tmp_path, monkeypatch)
    entry = bundle / "public-models" / key
    (victim,) = entry.rglob("*.safetensors")
    victim.write_bytes(victim.read_bytes()[:-1] + b"\0")
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "cache-b"))
    with pytest.raises(DataError, match=victim.name):
        cache_bundle.import_entries(bundle)
    assert not cache_path("public-models", key).exists()


def test_a_card_that_misses_a_file_is_refused(tmp_path, monkeypatch):
    bundle, key, _ = _trained_bundle(tmp_path, monkeypatch)
    (bundle / "public-models" / key / "extra.bin").write_bytes(b"x")
    with pytest.raises(DataError, match="extra.bin"):
        cache_bundle.read_card(bundle / "public-models" / key)


def test_a_card_that_is_not_json_or_names_another_key_is_refused(tmp_path, monkeypatch):
    bundle, key, _ = _trained_bundle(tmp_path, monkeypatch)
    card = bundle / "public-models" / key / "card.json"
    text = card.read_text()
    card.write_text(text.replace(f'"key": "{key}"', '"key": "someone-else"'))
    with pytest.raises(DataError, match="card.json: format 1 and key 'someone-else'"):
        cache_bundle.read_card(card.parent)
    card.write_text(text[:-10])
    with pytest.raises(DataError, match="card.json: not JSON"):
        cache_bundle.import_entries(bundle)


def test_export_never_replaces_a_folder_it_did_not_write(tmp_path, monkeypatch):
    bundle, key, _ = _trained_bundle(tmp_path, monkeypatch)
    cache_bundle.export_entries(bundle, kinds=["public-models"])  # its own entry: replaced
    mine = tmp_path / "mine"
    (mine / "public-models" / key).mkdir(parents=True)
    (mine / "public-models" / key / "notes.txt").write_text("keep me")
    with pytest.raises(ConfigError, match="is not a bundle entry"):
        cache_bundle.export_entries(mine, kinds=["public-models"])
    assert (mine / "public-models" / key / "notes.txt").read_text() == "keep me"


def test_a_cache_miss_loads_the_shipped_checkpoint_instead_of_training(
    tmp_path, monkeypatch, caplog
):
    bundle, key, trained = _trained_bundle(tmp_path, monkeypatch)
    monkeypatch.setattr(cache_bundle, "SHIPPED", bundle)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "cache-b"))
    monkeypatch.setattr(DPAggTI, "pretrain_public", _no_training)
    loaded = _method()
    with caplog.at_level(logging.INFO, logger="isoeps"):
        assert prepare_public(loaded, tiny_split("public", n=16)) == key
    assert f"loaded the shipped checkpoint public-models/{key}" in caplog.text
    state = _state(trained)
    assert all(torch.equal(state[k], _state(loaded)[k]) for k in state)


def test_another_key_trains_and_says_why(tmp_path, monkeypatch, caplog):
    bundle, key, _ = _trained_bundle(tmp_path, monkeypatch)
    monkeypatch.setattr(cache_bundle, "SHIPPED", bundle)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "cache-b"))
    with caplog.at_level(logging.INFO, logger="isoeps"):
        other = prepare_public(_method(pretrain_seed=1), tiny_split("public", n=16))
    assert other != key
    assert f"no shipped public-models checkpoint has key {other} (shipped: {key}" in caplog.text


def test_isoeps_shipped_0_ignores_the_shipped_bundle(tmp_path, monkeypatch):
    bundle, key, _ = _trained_bundle(tmp_path, monkeypatch)
    monkeypatch.setattr(cache_bundle, "SHIPPED", bundle)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "cache-b"))
    monkeypatch.setenv(cache_bundle.ENV_VAR, "0")
    assert not cache_bundle.seed_from_shipped("public-models", key)
    assert not cache_path("public-models", key).exists()


def _no_training(self, public):
    raise AssertionError("trained although a shipped checkpoint matched")


def test_a_card_from_another_release_is_refused_naming_both(tmp_path, monkeypatch):
    bundle, key, _ = _trained_bundle(tmp_path, monkeypatch)
    path = bundle / "public-models" / key / "card.json"
    card = json.loads(path.read_text())
    card["exported_by"]["isoeps"] = "0.0.1"
    path.write_text(json.dumps(card))
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "cache-b"))
    with pytest.raises(DataError, match=r"card\.json: exported by isoeps '0\.0\.1', this is"):
        cache_bundle.import_entries(bundle)
    assert not cache_path("public-models", key).exists()
