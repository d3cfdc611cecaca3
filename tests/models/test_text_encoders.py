"""The frozen text encoder: offline loading, determinism, memoisation, token injection."""

from __future__ import annotations

import pytest
import torch

from isoeps.errors import ConfigError, MissingWeightsError
from isoeps.models.text_encoders import (
    PLACEHOLDER,
    HFLocalTextEncoder,
    load_text_encoder,
    minilm_folder,
)


@pytest.fixture(scope="module")
def encoder():
    return load_text_encoder("minilm")


def test_loads_offline_from_the_wheel(encoder) -> None:
    assert encoder.dim == 384
    assert encoder.path == minilm_folder()
    assert len(encoder.weights_sha256) == 64
    assert not any(p.requires_grad for p in encoder.model.parameters())
    assert load_text_encoder("minilm") is encoder


def test_missing_folder_names_the_path(tmp_path) -> None:
    with pytest.raises(MissingWeightsError, match=str(tmp_path)):
        HFLocalTextEncoder(path=tmp_path)
    with pytest.raises(ConfigError, match="hf-local"):
        HFLocalTextEncoder(path=None)


def test_encode_shapes_mask_and_padding(encoder) -> None:
    hidden, mask = encoder.encode(["a photo of a cat on a mat", "hello"])
    assert hidden.dtype == torch.float32 and hidden.shape[0] == 2 and hidden.shape[2] == 384
    assert mask.dtype == torch.bool and mask.shape == hidden.shape[:2]
    assert mask[0].all() and not mask[1].all()
    assert torch.all(hidden[1][~mask[1]] == 0)


def test_deterministic_and_memoised(encoder) -> None:
    captions = ["a red square", "a blue circle", "a red square"]
    first, _ = encoder.encode(captions)
    assert "a red square" in encoder._memo
    torch.testing.assert_close(first[0], first[2])
    # The memo returns what a fresh forward pass returns (up to padding round-off).
    fresh, mask = encoder._forward(["a blue circle"], vectors=None)
    width = int(mask[0].sum())
    torch.testing.assert_close(first[1, :width], fresh[0, :width], atol=1e-5, rtol=1e-5)


def test_pooled_is_normalised_and_meaningful(encoder) -> None:
    pooled = encoder.encode_pooled(["a cat", "a kitten", "stock market report"])
    torch.testing.assert_close(pooled.norm(dim=1), torch.ones(3))
    assert pooled[0] @ pooled[1] > pooled[0] @ pooled[2]


def test_placeholder_is_one_verbatim_token(encoder) -> None:
    tokens = encoder.tokenizer.tokenize(f"A photo of {PLACEHOLDER}, a Cat")
    assert PLACEHOLDER in tokens and tokens.count(PLACEHOLDER) == 1


def test_injection_changes_only_prompts_with_the_token(encoder) -> None:
    captions = [f"a photo of {PLACEHOLDER}, a cat", "a photo of a dog"]
    vectors = torch.stack([encoder.token_embedding("person"), encoder.token_embedding("tree")])
    injected, _mask = encoder.encode_with_vectors(captions, vectors)
    plain, plain_mask = encoder.encode(["a photo of a dog"])
    width = int(plain_mask[0].sum())
    torch.testing.assert_close(injected[1, :width], plain[0, :width], atol=1e-5, rtol=1e-5)
    other, _ = encoder.encode_with_vectors(captions, vectors.flip(0))
    assert (other[0] - injected[0]).abs().max() > 1e-2
    torch.testing.assert_close(other[1], injected[1])


def test_gradients_reach_only_the_injected_vectors(encoder) -> None:
    captions = [f"a photo of {PLACEHOLDER}", f"{PLACEHOLDER} on a beach", "no token here"]
    vectors = torch.randn(3, encoder.dim, requires_grad=True)
    hidden, _mask = encoder.encode_with_vectors(captions, vectors)
    hidden.pow(2).sum().backward()
    assert vectors.grad is not None
    assert vectors.grad[0].abs().sum() > 0 and vectors.grad[1].abs().sum() > 0
    assert torch.all(vectors.grad[2] == 0)
    assert all(p.grad is None for p in encoder.model.parameters())


def test_rejects_bad_vector_shapes_and_bare_strings(encoder) -> None:
    with pytest.raises(ValueError, match="vectors must be"):
        encoder.encode_with_vectors(["a", "b"], torch.zeros(3, encoder.dim))
    with pytest.raises(TypeError, match="list of strings"):
        encoder.encode("a photo")
