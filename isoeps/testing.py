"""Test helpers for plugin authors: :class:`MethodTesterMixin` and tiny fixtures.

Use the mixin in a pytest class, set ``method_class`` (and ``config`` for a tiny, fast
configuration), and pytest runs the method through the contract on a few synthetic images::

    class TestMyMethod(MethodTesterMixin):
        method_class = MyMethod
        config = {"steps": 2}
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from isoeps.datasets.base import ImageSplit

_COLOURS = ("red", "green", "blue")

# The public text-to-image UNet that dpagg-ti, private-evolution and dp-ldm build on, at 8x8.
_TINY_UNET: dict[str, Any] = {
    "resolution": 8,
    "unet_channels": (16, 32),
    "pretrain_steps": 2,
    "pretrain_batch_size": 4,
    "sampler_steps": 2,
}
# The AR family (wavelet-two-stage, dpsgd-full-finetune) at its default 32x32.
_TINY_AR: dict[str, Any] = {
    "codebook_size": 32,
    "kmeans_iters": 3,
    "dim": 32,
    "depth": 1,
    "heads": 2,
    "mlp_ratio": 2,
    "pretrain_batch_size": 16,
    "sr_width": 16,
    "sr_blocks": 1,
    "sr_batch_size": 8,
    "sample_batch_size": 8,
}
_TINY_CONFIGS: dict[str, dict[str, Any]] = {
    "wavelet-two-stage": {
        **_TINY_AR,
        "tokenizer_images": 120,
        "pretrain_steps": 20,
        "sr_steps": 5,
        "dp_sgd": {"steps": 3, "expected_batch_size": 24, "max_physical_batch_size": 16},
    },
    "dpsgd-full-finetune": {
        **_TINY_AR,
        "tokenizer_images": 100,
        "pretrain_steps": 10,
        "sr_steps": 3,
        "dp_sgd": {"steps": 2, "expected_batch_size": 20, "max_physical_batch_size": 16},
    },
    "dpagg-ti": {**_TINY_UNET, "expected_records": 3, "ti_steps": 2},
    "private-evolution": {
        **_TINY_UNET,
        "embedding_dim": 8,
        "embedding_size": 4,
        "population_size": 6,
        "iterations": 2,
    },
    "dp-ldm": {
        **_TINY_UNET,
        "vae_channels": (16, 16),
        "vae_steps": 2,
        "vae_batch_size": 4,
        "dp_sgd": {"steps": 2, "expected_batch_size": 8, "max_physical_batch_size": 8},
    },
}


def tiny_config(method: str) -> dict[str, Any]:
    """A seconds-long configuration of a built-in method, for tests (a fresh copy each call).

    Args:
        method: a built-in method's registered name.

    Returns:
        The config overrides: small models, few public and DP steps.

    Raises:
        KeyError: ``method`` is not a built-in method.
    """
    if method not in _TINY_CONFIGS:
        raise KeyError(f"no tiny config for {method!r}; built-in: {', '.join(_TINY_CONFIGS)}")
    return copy.deepcopy(_TINY_CONFIGS[method])


def tiny_split(
    split: str = "private",
    *,
    n: int = 16,
    resolution: int = 8,
    seed: int = 0,
    dataset: str = "tiny",
) -> ImageSplit:
    """``n`` random images whose dominant colour is an attribute and named in the caption.

    Ids are prefixed with the split name, so splits of one seed never share a record.

    Args:
        split: the split's name (also seeds the images).
        n: how many images.
        resolution: side length of the square images, in pixels.
        seed: the seed of the images.
        dataset: the split's dataset name.

    Returns:
        The split, with a ``colour`` attribute.
    """
    rng = np.random.default_rng([seed, sum(map(ord, split))])
    colour = rng.integers(0, len(_COLOURS), size=n)
    images = rng.integers(0, 96, size=(n, 3, resolution, resolution), dtype=np.uint8)
    for i, c in enumerate(colour):
        images[i, c] += 128
    captions = [[f"a {_COLOURS[c]} square", f"something {_COLOURS[c]}"] for c in colour]
    return ImageSplit(
        dataset=dataset,
        split=split,
        ids=[f"{split}-{seed}-{i}" for i in range(n)],
        images=images,
        captions=captions,
        attributes={"colour": colour},
        attribute_schema={"colour": list(_COLOURS)},
        info={"source": "isoeps.testing.tiny_split"},
    )


class MethodTesterMixin:
    """Runs ``method_class`` through the method contract on tiny data.

    Class attributes: ``method_class`` (required), ``config`` (a tiny, fast config),
    ``resolution``, ``num_private`` (large enough for the method's sample rate) and
    ``target_epsilon``.
    """

    method_class: ClassVar[type]
    config: ClassVar[dict[str, Any]] = {}
    resolution: ClassVar[int] = 8
    num_private: ClassVar[int] = 64
    target_epsilon: ClassVar[float] = 10.0

    # -- helpers --------------------------------------------------------------------------------
    def make_method(self, seed: int = 0) -> Any:
        from isoeps.methods.base import MethodContext

        ctx = MethodContext(device="cpu", seed=seed, show_progress=False)
        return self.method_class(dict(self.config), ctx=ctx)

    def public_split(self) -> ImageSplit:
        return tiny_split("public", n=32, resolution=self.resolution)

    def private_split(self) -> ImageSplit:
        return tiny_split("private", n=self.num_private, resolution=self.resolution)

    def budgets(self) -> list[Any]:
        from isoeps.accountants import PrivacyBudget, default_delta

        out = []
        for mode in self.method_class.supported_budgets:
            if mode == "private":
                out.append(
                    PrivacyBudget.private(self.target_epsilon, default_delta(self.num_private))
                )
            elif mode == "inf":
                out.append(PrivacyBudget.non_private())
            else:
                out.append(PrivacyBudget.public_only())
        return out

    def fitted(self, budget: Any, tmp_path: Path) -> tuple[Any, Any]:
        """Pretrain a fresh method on the public split, fit it at ``budget``, check the report.

        A ``public`` budget fits on a ``NoPrivateData``; others on a guard over the private split.

        Args:
            budget: the privacy budget.
            tmp_path: a temporary folder (pytest's ``tmp_path``); unused here.

        Returns:
            ``(method, guard)``; the guard is None for a ``public`` budget.
        """
        from isoeps.methods.base import FitReport
        from isoeps.privacy.guard import PrivateData
        from isoeps.privacy.public_only import NoPrivateData

        method = self.make_method()
        method.pretrain_public(self.public_split())
        guard = None
        if budget.mode != "public":
            guard = PrivateData(self.private_split(), mode=budget.mode, seed=1)
        door = NoPrivateData(method=self.method_class.name) if guard is None else guard
        report = method.fit(door, budget)
        assert report is None or isinstance(report, FitReport), (
            f"fit returned {type(report).__name__}; expected a FitReport or None"
        )
        if report is not None:
            assert report.mode == budget.mode, f"FitReport.mode {report.mode!r} for {budget.mode}"
            if budget.mode == "private":
                assert report.steps >= 1 and report.noise_multiplier, "a private fit reports sigma"
            json.dumps(report.to_dict())  # it is stored in fit.json
        return method, guard

    # -- the contract ---------------------------------------------------------------------------
    def test_contract_class_attributes(self) -> None:
        from isoeps.methods.base import Method, MethodConfig

        cls = self.method_class
        assert issubclass(cls, Method), f"{cls} must subclass isoeps.methods.base.Method"
        assert isinstance(cls.name, str) and cls.name
        assert issubclass(cls.Config, MethodConfig)
        assert set(cls.supported_budgets) <= {"private", "inf", "public"}
        assert cls.supported_budgets, "supported_budgets is empty"

    def test_contract_config_declares_each_fields_part(self) -> None:
        from isoeps.methods.base import CONFIG_PARTS

        config = self.method_class.Config
        undeclared = [
            name for name in config.model_fields if config.part_of(name) not in CONFIG_PARTS
        ]
        assert not undeclared, (
            f"{config.__name__}: declare {undeclared} with public_field() or private_field(), "
            "so that the public cache key holds exactly what the public models read"
        )
        key = json.dumps(self.make_method().public_cache_key(), sort_keys=True, default=str)
        for name in config.model_fields:
            if config.part_of(name) == "private":
                assert f'"{name}"' not in key, f"private field {name!r} is in the public key"

    def test_contract_construct_and_reject_unknown_config(self) -> None:
        import pytest

        self.make_method()
        from isoeps.methods.base import MethodContext

        with pytest.raises(ValueError):
            self.method_class({**self.config, "no_such_field_xyz": 1}, ctx=MethodContext())

    def test_contract_save_load_public(self, tmp_path: Path) -> None:
        """A reloaded public model samples the same images as the one that was saved."""
        from isoeps.accountants import PrivacyBudget

        method = self.make_method()
        method.pretrain_public(self.public_split())
        method.save_public(tmp_path / "public")
        assert any((tmp_path / "public").iterdir()), "save_public wrote nothing"
        other = self.make_method()
        other.load_public(tmp_path / "public")
        assert isinstance(method.public_cache_key(), dict)
        prompts = ["a red square", "something green"]
        for m in (method, other):
            m.fit(None, PrivacyBudget.public_only())
        first, second = method.sample(prompts, 4), other.sample(prompts, 4)
        assert np.array_equal(first.images, second.images), "the reloaded model samples differ"

    def test_contract_fit_and_sample_every_budget(self, tmp_path: Path) -> None:
        from isoeps.accountants import epsilon, primary_accountant
        from isoeps.methods.base import Samples

        prompts = ["a red square", "a blue square", "something green"]
        for budget in self.budgets():
            method, guard = self.fitted(budget, tmp_path)
            if guard is not None:
                guard.close()  # as the harness does: sample() may not read private data
            if budget.mode == "private":
                assert guard is not None and not guard.ledger.is_empty, (
                    "a private fit spent nothing through the guard"
                )
                achieved = epsilon(
                    guard.ledger, budget.delta, primary_accountant(guard.ledger.adjacency)
                )
                assert achieved <= budget.epsilon, (
                    f"ledger epsilon {achieved} exceeds the target {budget.epsilon}"
                )
            samples = method.sample(prompts, 5)
            assert isinstance(samples, Samples)
            assert samples.images.dtype == np.uint8
            assert samples.images.shape == (5, 3, self.resolution, self.resolution)
            assert len(samples.prompts) == len(samples.eval_captions) == 5
            for caption in samples.eval_captions:
                assert isinstance(caption, str) and caption
            assert all(not math.isnan(float(x)) for x in samples.images.reshape(-1)[:10])
            # sample() keeps no state: the harness draws several sample sets in a fixed order
            # (prompted, open prompt, then the training captions of the extraction test).
            again = method.sample(prompts, 5)
            np.testing.assert_array_equal(
                again.images,
                samples.images,
                err_msg="sample() must be stateless: the same call gave other images",
            )
            self._check_unconditional(method)

    def _check_unconditional(self, method: Any) -> None:
        """A method that implements sample_unconditional returns OPEN_PROMPT-labelled images."""
        from isoeps.methods.base import OPEN_PROMPT, Method

        if type(method).sample_unconditional is Method.sample_unconditional:
            return  # suites that need open-prompt samples refuse such a method, clearly
        samples = method.sample_unconditional(3)
        assert samples.images.shape == (3, 3, self.resolution, self.resolution)
        assert samples.eval_captions == [OPEN_PROMPT] * 3, "record OPEN_PROMPT as eval captions"

    def test_contract_rejects_unsupported_budget(self) -> None:
        import pytest

        from isoeps.accountants import PrivacyBudget

        all_modes = {
            "private": PrivacyBudget.private(1.0, 1e-5),
            "inf": PrivacyBudget.non_private(),
            "public": PrivacyBudget.public_only(),
        }
        method = self.make_method()
        for mode, budget in all_modes.items():
            if mode not in self.method_class.supported_budgets:
                with pytest.raises(ValueError):
                    method.check_budget(budget)
