"""Private Evolution end to end on tiny data: the contract, T vote releases in the ledger at
or under the target, votes that follow the private data, class-conditional PE, a public row
that reads nothing, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from isoeps.accountants import PrivacyBudget, SubsampledGaussian, default_delta, epsilon
from isoeps.accountants.mechanisms import NonPrivate
from isoeps.datasets.base import ImageSplit
from isoeps.errors import ConfigError
from isoeps.methods.base import OPEN_PROMPT, MethodContext
from isoeps.methods.private_evolution import PrivateEvolution
from isoeps.privacy.guard import PrivateData
from isoeps.privacy.public_only import NoPrivateData
from isoeps.testing import MethodTesterMixin, tiny_config, tiny_split

TINY = tiny_config("private-evolution")
CLASSES = ("a red square", "a green square", "a blue square")


class TestPrivateEvolutionContract(MethodTesterMixin):
    method_class = PrivateEvolution
    config = TINY
    resolution = 8
    num_private = 40


def _method(seed: int = 0, **overrides) -> PrivateEvolution:
    return PrivateEvolution(
        {**TINY, **overrides}, ctx=MethodContext(seed=seed, show_progress=False)
    )


@pytest.fixture(scope="module")
def public_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    method = _method()
    method.pretrain_public(tiny_split("public", n=16, resolution=8))
    directory = tmp_path_factory.mktemp("pe-public")
    method.save_public(directory)
    return directory


def _loaded(public_dir: Path, seed: int = 0, **overrides) -> PrivateEvolution:
    method = _method(seed, **overrides)
    method.load_public(public_dir)
    return method


def _private(n: int = 30) -> ImageSplit:
    return tiny_split("private", n=n, resolution=8)


@pytest.mark.parametrize("target", [1.0, 10.0])
def test_ledger_holds_one_gaussian_per_vote_at_or_under_the_target(public_dir, target) -> None:
    method = _loaded(public_dir, iterations=3)
    private = _private()
    delta = default_delta(len(private))
    guard = PrivateData(private, mode="private", seed=2)
    report = method.fit(guard, PrivacyBudget.private(target, delta))
    entries = guard.ledger.entries
    assert len(entries) == 3 and report.steps == 3
    assert all(isinstance(e, SubsampledGaussian) for e in entries)
    assert {(e.sample_rate, e.steps, e.noise_multiplier) for e in entries} == {
        (1.0, 1, report.noise_multiplier)
    }
    assert target * 0.97 <= epsilon(guard.ledger, delta, "prv") <= target
    assert method.population.shape == (1, 6, 3, 8, 8)


def test_inf_votes_through_the_guard_without_noise(public_dir) -> None:
    guard = PrivateData(_private(), mode="inf", seed=2)
    report = _loaded(public_dir).fit(guard, PrivacyBudget.non_private())
    assert report.noise_multiplier is None and report.steps == 2
    assert len(guard.ledger.entries) == 2
    assert all(isinstance(e, NonPrivate) for e in guard.ledger.entries)


def test_public_row_reads_no_private_record_and_keeps_the_random_population(public_dir) -> None:
    public = _loaded(public_dir)
    report = public.fit(NoPrivateData(method=public.name), PrivacyBudget.public_only())
    assert report.mode == "public" and report.steps == 0
    twin = _loaded(public_dir)
    np.testing.assert_array_equal(
        public.population, twin._random_population(twin.ctx.torch_generator("sampling"))
    )


def test_noiseless_votes_count_each_private_image_once_at_its_nearest_member(public_dir) -> None:
    method = _loaded(public_dir)
    population = method._random_population(method.ctx.torch_generator("sampling"))
    # Private images that are copies of members 1 and 4: the noiseless votes land there.
    copies = np.concatenate([population[0, [1] * 5], population[0, [4] * 3]])
    private = ImageSplit(
        dataset="tiny",
        split="private",
        ids=[f"copy-{i}" for i in range(len(copies))],
        images=copies,
        captions=[["a red square"]] * len(copies),
    )
    guard = PrivateData(private, mode="inf", seed=0)
    counts = method._noisy_votes(guard, population, None, 0)
    expected = np.zeros((1, 6))
    expected[0, 1], expected[0, 4] = 5, 3
    np.testing.assert_allclose(counts, expected)
    # Resampling then draws only those two members, in about their 5:3 proportion.
    drawn = method._resample(population, counts, np.random.default_rng(0))
    members = {population[0, 1].tobytes(), population[0, 4].tobytes()}
    assert {image.tobytes() for image in drawn[0]} <= members


def test_class_conditional_votes_stay_within_a_class_and_samples_follow_the_prompt(
    public_dir,
) -> None:
    method = _loaded(public_dir, class_prompts=CLASSES)
    private = _private()
    guard = PrivateData(private, mode="private", seed=2)
    method.fit(guard, PrivacyBudget.private(10.0, default_delta(len(private))))
    assert method.population.shape == (3, 6, 3, 8, 8)
    votes = method._votes(private.take(np.arange(6)), np.zeros((3, 6, 8)))
    assert votes.shape == (6, 18) and (votes.sum(axis=1) == 1).all()
    for row, colour in zip(votes, private.attributes["colour"][:6], strict=True):
        assert colour * 6 <= int(np.flatnonzero(row)[0]) < (colour + 1) * 6
    samples = method.sample([CLASSES[2], CLASSES[0]], 4)
    assert samples.prompts == [CLASSES[2], CLASSES[0]] * 2
    members = {image.tobytes() for image in method.population[2]}
    assert samples.images[0].tobytes() in members
    with pytest.raises(ConfigError, match="the sample prompt"):
        method.sample(["a purple square"], 1)


def test_class_conditional_refuses_a_private_caption_outside_the_classes(public_dir) -> None:
    method = _loaded(public_dir, class_prompts=CLASSES[:2])
    private = _private()
    guard = PrivateData(private, mode="inf", seed=2)
    with pytest.raises(ConfigError, match="class_prompts") as error:
        method.fit(guard, PrivacyBudget.non_private())
    assert "not shown" in str(error.value)
    assert "blue" not in str(error.value)  # the private record's own caption is not quoted


def test_a_folder_without_the_public_models_names_what_is_missing(tmp_path) -> None:
    from isoeps.errors import MissingWeightsError

    with pytest.raises(MissingWeightsError, match="private_evolution.json"):
        _method().load_public(tmp_path)


def test_unconditional_samples_record_what_the_model_was_given(public_dir) -> None:
    method = _loaded(public_dir)
    method.fit(NoPrivateData(method=method.name), PrivacyBudget.public_only())
    samples = method.sample(["a red square"], 8)
    assert samples.prompts == [""] * 8 and samples.eval_captions == ["a red square"] * 8
    members = {image.tobytes() for image in method.population[0]}
    assert {image.tobytes() for image in samples.images} <= members
    open_samples = method.sample_unconditional(3)
    assert open_samples.prompts == [OPEN_PROMPT] * 3


def test_plan_matches_the_fit_and_refuses_a_hopeless_target() -> None:
    method = _method(iterations=5)
    delta = default_delta(20000)
    plan = method.plan(PrivacyBudget.private(1.0, delta), 20000)
    assert plan["steps"] == 5 and plan["sample_rate"] == 1.0 and plan["clip_norm"] == 1.0
    assert 0.97 <= plan["epsilon"]["prv"] <= 1.0
    assert method.plan(PrivacyBudget.non_private(), 20000)["noise_multiplier"] is None
    assert method.plan(PrivacyBudget.public_only(), 20000) is None
    with pytest.raises(ConfigError, match="max_noise_multiplier"):
        _method(iterations=5, max_noise_multiplier=1.0).plan(
            PrivacyBudget.private(0.1, delta), 20000
        )


def test_fit_before_public_models_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="before pretrain_public"):
        _method().fit(NoPrivateData(method="private-evolution"), PrivacyBudget.public_only())
    with pytest.raises(ConfigError, match="sample before fit"):
        _method().sample(["x"], 1)


def test_a_local_stable_diffusion_folder_serves_random_and_variation_apis(
    tiny_stable_diffusion, tmp_path
) -> None:
    method = _method(pretrained_path=str(tiny_stable_diffusion), resolution=8)
    method.pretrain_public(tiny_split("public", n=16, resolution=8))
    method.save_public(tmp_path)
    method.load_public(tmp_path)
    assert method.model.vae is not None  # latent space: VARIATION_API encodes, noises, decodes
    private = _private()
    guard = PrivateData(private, mode="private", seed=1)
    method.fit(guard, PrivacyBudget.private(10.0, default_delta(len(private))))
    assert len(guard.ledger.entries) == 2
    assert method.population.shape == (1, 6, 3, 8, 8)
