"""DPAgg-TI end to end on tiny data: contract, ledgers at eps in {1, 10}, reference modes,
public-data isolation and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from isoeps.accountants import (
    AccountingInputError,
    PrivacyBudget,
    SubsampledGaussian,
    default_delta,
    epsilon,
)
from isoeps.errors import ConfigError, MissingWeightsError
from isoeps.methods.base import OPEN_PROMPT, MethodContext
from isoeps.methods.dpagg_ti import TOKEN_MARK, DPAggTI
from isoeps.models.text_encoders import PLACEHOLDER
from isoeps.privacy.guard import PrivateData
from isoeps.testing import MethodTesterMixin, tiny_config, tiny_split

TINY = tiny_config("dpagg-ti")


class TestDPAggTIContract(MethodTesterMixin):
    method_class = DPAggTI
    config = TINY
    resolution = 8
    num_private = 40


class Untouchable:
    """A private dataset whose every access (besides its size) raises."""

    def __len__(self) -> int:
        return 40

    def __getitem__(self, index: int):
        raise AssertionError("private data was read")

    def take(self, indices):
        raise AssertionError("private data was read")

    def __getattr__(self, name: str):
        raise AssertionError(f"private data was read ({name})")


def _method(seed: int = 0, **overrides) -> DPAggTI:
    ctx = MethodContext(seed=seed, show_progress=False)
    return DPAggTI({**TINY, **overrides}, ctx=ctx)


@pytest.fixture(scope="module")
def public_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    method = _method()
    method.pretrain_public(tiny_split("public", n=16, resolution=8))
    directory = tmp_path_factory.mktemp("dpagg-public")
    method.save_public(directory)
    return directory


def _loaded(public_dir: Path, **overrides) -> DPAggTI:
    method = _method(**overrides)
    method.load_public(public_dir)
    return method


def test_placeholder_marks_agree() -> None:
    assert TOKEN_MARK == PLACEHOLDER


@pytest.mark.parametrize("target", [1.0, 10.0])
def test_private_fit_ledger_is_within_target(public_dir: Path, target: float) -> None:
    private = tiny_split("private", n=40, resolution=8)
    budget = PrivacyBudget.private(target, default_delta(len(private)))
    method = _loaded(public_dir)
    guard = PrivateData(private, seed=1)
    method.fit(guard, budget)
    (entry,) = guard.ledger.entries
    assert isinstance(entry, SubsampledGaussian) and entry.steps == 1
    assert entry.sample_rate == pytest.approx(3 / 40)
    assert entry.noise_multiplier == pytest.approx(method.report["noise_multiplier"])
    assert epsilon(guard.ledger, budget.delta, "prv") <= target
    assert method.token is not None
    samples = method.sample(["a red square", "a blue square"], 3)
    assert samples.images.shape == (3, 3, 8, 8)
    assert samples.prompts[0] == f"a photo of {PLACEHOLDER}, a red square"
    assert samples.eval_captions == ["a red square", "a blue square", "a red square"]


def test_inf_mode_records_non_private_access(public_dir: Path) -> None:
    method = _loaded(public_dir)
    guard = PrivateData(tiny_split("private", n=40, resolution=8), mode="inf", seed=1)
    method.fit(guard, PrivacyBudget.non_private())
    assert not guard.ledger.is_private
    assert method.token is not None and method.report["mode"] == "inf"
    # Unconditional samples keep the private token and drop only the caption.
    samples = method.sample_unconditional(2)
    assert samples.prompts == [f"a photo of {TOKEN_MARK}"] * 2
    assert samples.eval_captions == [OPEN_PROMPT] * 2


def test_public_mode_never_touches_private_data(public_dir: Path) -> None:
    method = _loaded(public_dir)
    method.fit(None, PrivacyBudget.public_only())
    guard = PrivateData(Untouchable(), seed=0)
    method.fit(guard, PrivacyBudget.public_only())
    assert guard.ledger.is_empty and method.token is None
    samples = method.sample(["a red square"], 2)
    assert samples.prompts == samples.eval_captions == ["a red square", "a red square"]


def test_public_pretraining_reads_only_the_public_split(tmp_path: Path) -> None:
    # The method is never handed the private data before fit; pretraining works from the
    # public split alone, and a guard around untouchable data survives a public fit.
    method = _method()
    method.pretrain_public(tiny_split("public", n=8, resolution=8))
    guard = PrivateData(Untouchable(), seed=0)
    method.fit(guard, PrivacyBudget.public_only())
    assert guard.ledger.is_empty


def test_deterministic_given_the_seed(public_dir: Path) -> None:
    private = tiny_split("private", n=40, resolution=8)
    budget = PrivacyBudget.private(10.0, default_delta(40))
    outputs = []
    for _ in range(2):
        method = _loaded(public_dir)
        method.fit(PrivateData(private, seed=4), budget)
        outputs.append(method.sample(["a green square"], 2).images)
    np.testing.assert_array_equal(outputs[0], outputs[1])


def test_epsilon_needing_too_much_noise_is_refused(public_dir: Path) -> None:
    method = _loaded(public_dir, max_noise_multiplier=2.0)
    guard = PrivateData(tiny_split("private", n=40, resolution=8), seed=1)
    with pytest.raises(ConfigError, match="max_noise_multiplier=2"):
        method.fit(guard, PrivacyBudget.private(0.01, 1e-3))
    assert guard.ledger.is_empty  # refused before anything was spent


def test_groups_without_hashing_are_refused(public_dir: Path) -> None:
    guard = PrivateData(Untouchable(), seed=0)
    budget = PrivacyBudget.private(1.0, 1e-3)
    with pytest.raises(ConfigError, match="hash of the record id"):
        _loaded(public_dir, group_size=4, group_assignment="sequential").fit(guard, budget)
    with pytest.raises(ConfigError, match="hash of the record id"):
        _loaded(public_dir, group_size=2, group_assignment="sequential").fit(
            guard, PrivacyBudget.non_private()
        )
    assert guard.ledger.is_empty


def test_groups_of_two_are_one_replace_one_release_accounted_by_pld(public_dir: Path) -> None:
    private = tiny_split("private", n=40, resolution=8)
    budget = PrivacyBudget.private(10.0, default_delta(len(private)))
    method = _loaded(public_dir, group_size=2, num_groups=20, expected_records=6)
    guard = PrivateData(private, seed=1)
    method.fit(guard, budget)
    (entry,) = guard.ledger.entries
    assert entry == SubsampledGaussian(
        method.report["noise_multiplier"], 6 / 40, 1, adjacency="replace_one"
    )
    assert epsilon(guard.ledger, budget.delta, "pld") <= 10.0
    with pytest.raises(AccountingInputError, match="use accountant 'pld'"):
        epsilon(guard.ledger, budget.delta, "prv")
    # q G, G = 20 fixed groups (about two images each); the noise std is sigma C (see
    # SubsampledGaussian).
    assert method.report["divisor"] == pytest.approx(6 / 40 * 20)
    assert method.report["noise_std"] == pytest.approx(
        method.report["noise_multiplier"] * method.report["clip_norm"]
    )
    assert method.report["adjacency"] == "replace_one"
    samples = method.sample(["a red square"], 2)
    assert samples.images.shape == (2, 3, 8, 8)
    assert samples.prompts[0] == f"a photo of {PLACEHOLDER}, a red square"


def test_groups_need_a_fixed_number_of_groups(public_dir: Path) -> None:
    guard = PrivateData(Untouchable(), seed=0)
    with pytest.raises(ConfigError, match="num_groups"):
        _loaded(public_dir, group_size=2).fit(guard, PrivacyBudget.private(1.0, 1e-3))
    assert guard.ledger.is_empty


def test_groups_of_two_in_inf_mode(public_dir: Path) -> None:
    method = _loaded(public_dir, group_size=2, num_groups=20, expected_records=6)
    guard = PrivateData(tiny_split("private", n=40, resolution=8), mode="inf", seed=1)
    report = method.fit(guard, PrivacyBudget.non_private())
    assert not guard.ledger.is_private and len(guard.ledger) == 1
    assert method.token is not None and report.mode == "inf"
    assert "sampled" not in report.details  # no count of private records in fit.json


def test_bad_config_names_the_field() -> None:
    with pytest.raises(ValueError, match="prompt_template"):
        _method(prompt_template="a photo of {caption}")
    with pytest.raises(ValueError, match="no_such"):
        _method(no_such=1)


def test_missing_stable_diffusion_folder_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "sd-weights"
    with pytest.raises(MissingWeightsError, match="sd-weights"):
        _method(pretrained_path=str(missing)).pretrain_public(tiny_split("public", n=2))


def test_model_without_text_encoder_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "unconditional"
    for sub in ("unet", "vae", "scheduler"):
        (folder / sub).mkdir(parents=True)
    with pytest.raises(ConfigError, match="no text_encoder"):
        _method(pretrained_path=str(folder)).pretrain_public(tiny_split("public", n=2))
