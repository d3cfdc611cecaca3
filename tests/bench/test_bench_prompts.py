"""Prompt choice: plain prompts keep their historical draw; class-conditional sources get
per-class prompts in the reference split's class proportions."""

from __future__ import annotations

import numpy as np
import pytest

from isoeps.bench.prompts import choose_class_prompts, choose_prompts, prompts_for
from isoeps.datasets.base import ImageSplit


def _split(labels: list[int] | None, *, captions: int = 1) -> ImageSplit:
    n = len(labels) if labels is not None else 7
    return ImageSplit(
        dataset="toy",
        split="reference",
        ids=[f"r{i}" for i in range(n)],
        images=np.zeros((n, 3, 4, 4), np.uint8),
        captions=[[f"record {i} caption {c}" for c in range(captions)] for i in range(n)],
        attributes=None if labels is None else {"label": np.asarray(labels)},
        attribute_schema=None if labels is None else {"label": ["a", "b", "c"]},
    )


def test_plain_prompts_keep_the_historical_draw() -> None:
    """The smoke baseline depends on this exact sequence of draws."""
    split = _split(None, captions=3)
    chosen = choose_prompts(split, n=10, seed=5)
    rng = np.random.default_rng(5)
    index = rng.permutation(7)[np.arange(10) % 7]
    picks = rng.integers(0, 1 << 30, size=10)
    assert chosen.index.tolist() == index.tolist()
    assert chosen.prompts == [split.captions[i][picks[k] % 3] for k, i in enumerate(index)]
    assert chosen.source_ids == [f"r{i}" for i in index] and chosen.labels is None


def test_class_prompts_follow_the_class_proportions() -> None:
    labels = [0] * 50 + [1] * 30 + [2] * 20
    chosen = choose_class_prompts(_split(labels), n=10, seed=0)
    assert np.bincount(chosen.labels, minlength=3).tolist() == [5, 3, 2]
    assert all(f"record {i} " in p for i, p in zip(chosen.index, chosen.prompts, strict=True))
    assert chosen.labels.tolist() == [labels[i] for i in chosen.index]
    assert len(set(chosen.index.tolist())) == 10  # no record twice while a class has enough


def test_class_prompts_largest_remainder_and_cycling() -> None:
    labels = [0, 0, 1, 2]  # shares of n = 7: 3.5, 1.75, 1.75 -> floors 3, 1, 1
    chosen = choose_class_prompts(_split(labels), n=7, seed=3)
    # the two left over go to the largest remainders (.75, .75), not to .5
    assert np.bincount(chosen.labels, minlength=3).tolist() == [3, 2, 2]
    assert list(chosen.index).count(2) == 2 == list(chosen.index).count(3)  # one record: cycles


def test_class_prompts_mix_classes_in_any_prefix_and_are_seeded() -> None:
    labels = [k for k in range(3) for _ in range(40)]
    first = choose_class_prompts(_split(labels), n=60, seed=1)
    assert len(set(first.labels[:9].tolist())) == 3
    again = choose_class_prompts(_split(labels), n=60, seed=1)
    assert first.index.tolist() == again.index.tolist()
    assert choose_class_prompts(_split(labels), n=60, seed=2).index.tolist() != first.index.tolist()


@pytest.mark.parametrize("labels, stratified", [([0, 1, 1], True), (None, False)])
def test_prompts_for_picks_by_the_label_attribute(labels, stratified: bool) -> None:
    split = _split(labels)
    expected = (choose_class_prompts if stratified else choose_prompts)(split, n=4, seed=9)
    assert prompts_for(split, n=4, seed=9).index.tolist() == expected.index.tolist()
