"""Fixtures shared by the methods' tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def tiny_stable_diffusion(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Stable Diffusion pipeline written with ``save_pretrained``, as diffusers'
    own pipeline tests build theirs: nothing is downloaded."""
    from diffusers import (
        AutoencoderKL,
        DDIMScheduler,
        StableDiffusionPipeline,
        UNet2DConditionModel,
    )
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        block_out_channels=(8, 16),
        layers_per_block=1,
        sample_size=8,
        in_channels=4,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=4,
        norm_num_groups=4,
    )
    vae = AutoencoderKL(
        block_out_channels=(8, 8),
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        latent_channels=4,
        norm_num_groups=4,
        sample_size=16,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0, eos_token_id=2, hidden_size=16, intermediate_size=32,
            layer_norm_eps=1e-5, num_attention_heads=2, num_hidden_layers=2, pad_token_id=1,
            vocab_size=1000, max_position_embeddings=77,
        )
    )  # fmt: skip
    tokenizer = _tiny_clip_tokenizer(tmp_path_factory.mktemp("tokenizer"), CLIPTokenizer)
    pipeline = StableDiffusionPipeline(
        unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
        scheduler=DDIMScheduler(clip_sample=False), safety_checker=None,
        feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip
    folder = tmp_path_factory.mktemp("tiny-sd")
    pipeline.save_pretrained(folder)
    return folder


def _tiny_clip_tokenizer(folder: Path, tokenizer_class):
    """A CLIP BPE tokenizer over a few words, written locally."""

    words = ["a", "red", "green", "blue", "square", "something", "photo", "of"]
    vocab = {"<|startoftext|>": 0, "!": 1, "<|endoftext|>": 2}
    for word in words:
        vocab[f"{word}</w>"] = len(vocab)
    for char in sorted({c for w in words for c in w}):
        vocab.setdefault(char, len(vocab))
        vocab.setdefault(f"{char}</w>", len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return tokenizer_class(str(folder / "vocab.json"), str(folder / "merges.txt"), pad_token="!")
