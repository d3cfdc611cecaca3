"""The learned spectral tokenizer: geometry, scale-causal decoding, a deterministic public fit
that beats its own initialisation, frozen state, and the AR model on its tokens."""

from __future__ import annotations

import pytest
import torch

from isoeps.datasets import load_split
from isoeps.models.ar_pretrain import build_tokenizer, fit_tokenizer
from isoeps.models.ar_transformer import ARConfig, ScaleCausalTransformer
from isoeps.models.learned_tokenizer import LearnedSpectralTokenizer, LearnedTokenizerConfig
from isoeps.models.tokenizer import SpectralTokenizer, TokenizerConfig, psnr, to_float

#: Seconds-scale: 16x16 images, 4 tokens per scale, 9 codes.
TINY = LearnedTokenizerConfig(
    fsq_levels=(3, 3), width=16, blocks=1, steps=40, batch_size=16, learning_rate=5e-3
)


@pytest.fixture(scope="module")
def faces() -> torch.Tensor:
    split = load_split("synthetic-faces", "public", resolution=16, n=96, seed=0)
    return to_float(split.images)


@pytest.fixture(scope="module")
def fitted(faces: torch.Tensor) -> LearnedSpectralTokenizer:
    tokenizer = LearnedSpectralTokenizer(TINY, resolution=16)
    tokenizer.fit(faces, seed=0)
    return tokenizer


def test_geometry_matches_the_kmeans_tokenizer() -> None:
    learned = LearnedSpectralTokenizer(
        LearnedTokenizerConfig(levels=3, base_patch=1), resolution=32
    )
    kmeans = SpectralTokenizer(TokenizerConfig(levels=3, base_patch=1), resolution=32)
    assert learned.num_scales == kmeans.num_scales == 4
    assert learned.tokens_per_scale == kmeans.tokens_per_scale == 16
    assert [learned.side(s) for s in range(4)] == [kmeans.side(s) for s in range(4)]
    assert learned.vocab_size == 512
    assert learned.encode(torch.zeros(2, 3, 32, 32)).shape == (2, 4 * 16)


def test_tokens_are_in_range_and_a_prefix_decodes_to_the_coarse_image(fitted, faces) -> None:
    tokens = fitted.encode(faces[:5])
    assert tokens.shape == (5, 3 * 4) and tokens.dtype == torch.long
    assert 0 <= int(tokens.min()) and int(tokens.max()) < fitted.vocab_size
    assert torch.equal(fitted.encode(faces[:5], num_scales=2), tokens[:, :8])
    assert fitted.decode(tokens[:, :4]).shape == (5, 3, 4, 4)
    assert fitted.decode(tokens[:, :8]).shape == (5, 3, 8, 8)
    assert fitted.decode(tokens).shape == (5, 3, 16, 16)
    # Decoding the tokens again gives the reconstruction the encoder's chain made.
    _, _, chained = fitted._chain(faces[:5], None)
    for band, again in zip(chained, fitted.decode_scales(tokens), strict=True):
        torch.testing.assert_close(band, again, rtol=0, atol=1e-5)


def test_a_finer_token_never_changes_a_coarser_scale(fitted, faces) -> None:
    tokens = fitted.encode(faces[:3])
    base = fitted.decode_scales(tokens)
    for position in range(4, 12):  # every token of scales 1 and 2
        scale = position // 4
        changed = tokens.clone()
        changed[:, position] = (changed[:, position] + 1) % fitted.vocab_size
        out = fitted.decode_scales(changed)
        for coarser in range(scale):
            assert torch.equal(out[coarser], base[coarser]), (position, coarser)
        assert not torch.equal(out[scale], base[scale])  # the test can fail
        assert torch.equal(
            fitted.decode(changed[:, : scale * 4]), fitted.decode(tokens[:, : scale * 4])
        )
    # ... while a coarse token changes every finer scale (through the context).
    changed = tokens.clone()
    changed[:, 0] = (changed[:, 0] + 1) % fitted.vocab_size
    assert not torch.equal(fitted.decode_scales(changed)[2], base[2])


def test_scale_causal_logits_on_learned_tokens(fitted, faces) -> None:
    torch.manual_seed(0)
    model = ScaleCausalTransformer(
        ARConfig(
            vocab_sizes=(fitted.vocab_size,) * 3,
            tokens_per_scale=4,
            text_dim=6,
            text_mode="pooled",
            prefix_len=2,
            dim=16,
            depth=2,
            heads=2,
            mlp_ratio=2,
        )
    ).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, 0.5)
    tokens = fitted.encode(faces[:3])
    text, mask = torch.randn(3, 1, 6), torch.ones(3, 1, dtype=torch.bool)
    base = model(tokens, text, mask)
    changed = tokens.clone()
    changed[:, 8:] = (changed[:, 8:] + 1) % fitted.vocab_size  # every finest-scale token
    out = model(changed, text, mask)
    for coarser in range(2):
        assert torch.equal(out[coarser], base[coarser])
    assert not torch.equal(out[2][:, 1:], base[2][:, 1:])


def test_the_fit_beats_its_initialisation_on_held_out_faces(faces) -> None:
    held_out = to_float(load_split("synthetic-faces", "reference", resolution=16, n=48).images)
    untrained = LearnedSpectralTokenizer(TINY, resolution=16)
    untrained.set_band_std(faces)
    before = psnr(untrained.decode(untrained.encode(held_out)), held_out)
    trained = LearnedSpectralTokenizer(
        LearnedTokenizerConfig(**{**TINY.__dict__, "steps": 150}), resolution=16
    )
    trained.fit(faces, seed=0)
    after = psnr(trained.decode(trained.encode(held_out)), held_out)
    assert after > before + 1.0, (before, after)


def test_the_fit_is_deterministic_from_its_seed(fitted, faces) -> None:
    again = LearnedSpectralTokenizer(TINY, resolution=16)
    torch.manual_seed(123)  # the global RNG plays no part
    again.fit(faces, seed=0)
    for key, value in fitted.state_dict().items():
        assert torch.equal(value, again.state_dict()[key]), key
    other = LearnedSpectralTokenizer(TINY, resolution=16)
    other.fit(faces, seed=1)
    assert not torch.equal(
        other.state_dict()["codecs.0.encoder.0.weight"],
        again.state_dict()["codecs.0.encoder.0.weight"],
    )


def test_a_fitted_tokenizer_is_frozen_and_round_trips_its_state(fitted, faces) -> None:
    assert not fitted.training
    assert not any(parameter.requires_grad for parameter in fitted.parameters())
    public_std = faces.new_tensor([float(b.std()) for b in fitted.bands(faces)[0].unbind(1)])
    torch.testing.assert_close(fitted.band_std_0, public_std)
    loaded = build_tokenizer(TINY, resolution=16)
    loaded.load_state_dict(fitted.state_dict())
    assert torch.equal(loaded.encode(faces[:4]), fitted.encode(faces[:4]))


def test_fit_tokenizer_picks_the_learned_one_by_its_config() -> None:
    public = load_split("synthetic-faces", "public", resolution=16, n=40, seed=0)
    small = LearnedTokenizerConfig(**{**TINY.__dict__, "steps": 2})
    tokenizer, report = fit_tokenizer(public, config=small, seed=0, max_images=32)
    assert isinstance(tokenizer, LearnedSpectralTokenizer)
    assert sorted(report) == ["psnr_scale0", "psnr_scale1", "psnr_scale2"]
    with pytest.raises(TypeError, match="no tokenizer"):
        build_tokenizer(object(), resolution=16)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("fsq_levels", (), "fsq_levels"),
        ("fsq_levels", (8, 1), "fsq_levels"),
        ("width", 12, "multiple of 8"),
        ("blocks", -1, "blocks"),
        ("steps", 0, "steps"),
        ("learning_rate", 0.0, "learning_rate"),
    ],
)
def test_bad_config_values_are_named(field: str, value, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LearnedTokenizerConfig(**{field: value})


def test_images_at_another_size_are_refused(fitted) -> None:
    with pytest.raises(ValueError, match="16x16"):
        fitted.encode(torch.zeros(1, 3, 32, 32))
