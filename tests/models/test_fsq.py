"""Finite scalar quantisation against vector_quantize_pytorch's FSQ (the reference)."""

from __future__ import annotations

import pytest
import torch
from vector_quantize_pytorch import FSQ

from isoeps.models.fsq import FiniteScalarQuantizer


@pytest.mark.parametrize("levels", [(8, 8, 8), (8, 5, 5, 5), (7, 6)])
def test_codes_and_indices_equal_the_reference(levels: tuple[int, ...]) -> None:
    reference = FSQ(levels=list(levels))
    ours = FiniteScalarQuantizer(levels)
    latents = torch.randn(4, 10, len(levels), generator=torch.Generator().manual_seed(0)) * 3
    codes, indices = reference(latents)
    torch.testing.assert_close(ours(latents), codes, rtol=0, atol=1e-6)
    assert torch.equal(ours.codes_to_indices(ours(latents)), indices.long())
    torch.testing.assert_close(ours.indices_to_codes(indices), codes, rtol=0, atol=1e-6)


def test_every_index_round_trips_and_codes_stay_in_range() -> None:
    fsq = FiniteScalarQuantizer((4, 3, 2))
    assert fsq.codebook_size == 24 and fsq.dim == 3
    every = torch.arange(fsq.codebook_size)
    codes = fsq.indices_to_codes(every)
    assert codes.abs().max() <= 1
    assert torch.equal(fsq.codes_to_indices(codes), every)
    assert len({tuple(c.tolist()) for c in codes}) == fsq.codebook_size


def test_gradients_pass_straight_through_the_rounding() -> None:
    fsq = FiniteScalarQuantizer((8, 8))
    latents = torch.zeros(3, 2, requires_grad=True)
    fsq(latents).sum().backward()
    assert latents.grad is not None and (latents.grad > 0).all()


def test_fsq_has_no_state_to_change() -> None:
    assert FiniteScalarQuantizer((8, 8, 8)).state_dict() == {}


@pytest.mark.parametrize("levels", [(), (8, 1)])
def test_bad_levels_are_an_error(levels) -> None:
    with pytest.raises(ValueError, match="FSQ levels"):
        FiniteScalarQuantizer(levels)
