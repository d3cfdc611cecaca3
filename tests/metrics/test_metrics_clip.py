"""CLIP score math, the tiny-clip-eval evaluator, and clip:<arch>:<path> loading."""

from __future__ import annotations

import json

import numpy as np
import pytest
from metrics_fixtures import shape_split, textured_images

from isoeps.errors import ConfigError
from isoeps.metrics.backbones import OpenClipBackbone, load_backbone
from isoeps.metrics.base import MetricInputs
from isoeps.metrics.clip_score import (
    CLIPScoreMetric,
    clip_cosines,
    clip_scores,
    clip_torchmetrics,
)
from isoeps.metrics.tiny_clip import APPROXIMATE_LABEL, TinyClipBackbone

TINY = {
    "width": 32,
    "layers": 1,
    "text_width": 32,
    "text_layers": 1,
    "embed_dim": 32,
    "steps": 60,
    "batch_size": 48,
    "lr": 3e-3,
}


def test_clip_scores_clamp_per_pair_not_the_mean() -> None:
    images = np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    texts = np.array([[1.0, 0.0], [-1.0, 0.0], [1.0, 1.0]])
    scores = clip_scores(clip_cosines(images, texts))
    np.testing.assert_allclose(scores, [100.0, 0.0, 100 / np.sqrt(2)])
    assert scores.mean() == pytest.approx((100 + 100 / np.sqrt(2)) / 3)
    # torchmetrics clamps the mean instead: (100 - 100 + 70.7) / 3.
    cosines = clip_cosines(images, texts)
    assert clip_torchmetrics(cosines) == pytest.approx(100 / np.sqrt(2) / 3)
    assert clip_torchmetrics(-cosines) == 0.0


def test_clip_score_without_captions_is_an_error() -> None:
    split = shape_split(8)
    inputs = MetricInputs(fake=split.images, fake_captions=[], reference=split, eval=split)
    with pytest.raises(ValueError, match="eval captions"):
        CLIPScoreMetric(tiny_clip=TINY).evaluate(inputs)


def test_tiny_clip_needs_the_eval_split() -> None:
    with pytest.raises(ConfigError, match="eval split"):
        load_backbone("tiny-clip-eval", eval_split=None)


@pytest.mark.slow
def test_tiny_clip_learns_and_is_labelled() -> None:
    eval_split = shape_split(300, seed=0)
    reference = shape_split(40, seed=1, split="reference")
    metric = CLIPScoreMetric(tiny_clip=TINY)
    captions = [c[0] for c in reference.captions]
    inputs = MetricInputs(
        fake=reference.images, fake_captions=captions, reference=reference, eval=eval_split
    )
    matched, matched_torchmetrics = metric.evaluate(inputs)
    assert matched.backbone.startswith("tiny-clip-eval@")
    assert matched.details["approximate"] == APPROXIMATE_LABEL
    assert matched.n == 40 and matched.std is not None
    assert matched_torchmetrics.name == "clip_torchmetrics"
    assert matched_torchmetrics.backbone == matched.backbone
    assert matched.ci_low <= matched.value <= matched.ci_high
    shuffled = captions[7:] + captions[:7]
    mismatched, _ = metric.evaluate(
        MetricInputs(
            fake=reference.images, fake_captions=shuffled, reference=reference, eval=eval_split
        )
    )
    assert matched.value > mismatched.value + 5, (matched.value, mismatched.value)
    # Cached: a second construction reuses the trained folder (same name, same weights).
    again = TinyClipBackbone(eval_split=eval_split, config=TINY)
    assert again.name == matched.backbone and again.weights_sha256 == matched.backbone_sha256


def test_clip_arch_path_loads_a_local_checkpoint(tmp_path) -> None:
    eval_split = shape_split(60, seed=0)
    tiny = TinyClipBackbone(eval_split=eval_split, config={**TINY, "steps": 2})
    meta = json.loads((tiny.path / "open_clip_config.json").read_text())
    assert meta["isoeps"]["note"] == APPROXIMATE_LABEL
    loaded = load_backbone(f"clip:my-arch:{tiny.path}")
    assert isinstance(loaded, OpenClipBackbone) and loaded.name == "clip:my-arch"
    assert loaded.weights_sha256 == tiny.weights_sha256
    assert loaded.text_features(["a red square"]).shape == (1, 32)
    with pytest.raises(ConfigError, match="clip:<arch>:<path>"):
        load_backbone("clip:only-arch")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_backbone(f"clip:ViT-B-32-quickgelu:{tmp_path / 'missing.pt'}")


#: The tiny random CLIP of the torchmetrics comparison: 2 layers of width 32 in each tower.
HF_TINY = {"size": 32, "patch": 8, "width": 32, "heads": 2, "layers": 2, "embed": 16}
OPENAI_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_STD = (0.26862954, 0.26130258, 0.27577711)


def _save_hf_clip(folder, *, seed: int):
    """A random transformers CLIPModel and an offline CLIPProcessor, saved in ``folder``.

    The tokenizer's vocab.json and merges.txt are open_clip's bundled BPE (the same OpenAI
    vocabulary), with its special tokens under their Hugging Face names."""
    import torch
    from open_clip.tokenizer import SimpleTokenizer
    from transformers import (
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        CLIPProcessor,
        CLIPTokenizer,
    )

    t = HF_TINY
    tower = {
        "hidden_size": t["width"],
        "intermediate_size": 4 * t["width"],
        "num_hidden_layers": t["layers"],
        "num_attention_heads": t["heads"],
    }
    config = CLIPConfig(
        text_config={**tower, "max_position_embeddings": 77},
        vision_config={**tower, "image_size": t["size"], "patch_size": t["patch"]},
        projection_dim=t["embed"],
    )
    torch.manual_seed(seed)
    model = CLIPModel(config).eval()
    model.save_pretrained(folder)
    bpe = SimpleTokenizer()
    vocab = {bpe.decoder[i]: i for i in range(len(bpe.decoder))}
    vocab["<|startoftext|>"] = vocab.pop(bpe.decoder[bpe.sot_token_id])
    vocab["<|endoftext|>"] = vocab.pop(bpe.decoder[bpe.eot_token_id])
    (folder / "vocab.json").write_text(json.dumps(vocab))
    merges = sorted(bpe.bpe_ranks, key=bpe.bpe_ranks.get)
    (folder / "merges.txt").write_text(
        "#version: 0.2\n" + "\n".join(" ".join(pair) for pair in merges) + "\n"
    )
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    images = CLIPImageProcessor(
        size={"shortest_edge": t["size"]},
        crop_size={"height": t["size"], "width": t["size"]},
        image_mean=OPENAI_MEAN,
        image_std=OPENAI_STD,
    )
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    return model


def _save_as_open_clip(model, folder) -> None:
    """The same weights as an open_clip folder (open_clip_config.json and a checkpoint), the
    form ``clip:<arch>:<path>`` loads."""
    import torch

    t, hf = HF_TINY, model.state_dict()
    text, vision = "text_model.", "vision_model."
    out = {
        "positional_embedding": hf[text + "embeddings.position_embedding.weight"],
        "token_embedding.weight": hf[text + "embeddings.token_embedding.weight"],
        "text_projection": hf["text_projection.weight"].T,
        "logit_scale": hf["logit_scale"],
        "visual.class_embedding": hf[vision + "embeddings.class_embedding"],
        "visual.positional_embedding": hf[vision + "embeddings.position_embedding.weight"],
        "visual.conv1.weight": hf[vision + "embeddings.patch_embedding.weight"],
        "visual.proj": hf["visual_projection.weight"].T,
    }
    norms = {"ln_final": text + "final_layer_norm", "visual.ln_pre": vision + "pre_layrnorm"}
    norms["visual.ln_post"] = vision + "post_layernorm"
    block = {"attn.out_proj": "self_attn.out_proj", "ln_1": "layer_norm1", "ln_2": "layer_norm2"}
    block.update({"mlp.c_fc": "mlp.fc1", "mlp.c_proj": "mlp.fc2"})
    for p in ("weight", "bias"):
        out.update({f"{ours}.{p}": hf[f"{theirs}.{p}"] for ours, theirs in norms.items()})
        for ours, theirs in (("visual.transformer", vision), ("transformer", text)):
            for i in range(t["layers"]):
                src, dst = f"{theirs}encoder.layers.{i}.", f"{ours}.resblocks.{i}."
                qkv = [hf[f"{src}self_attn.{q}_proj.{p}"] for q in "qkv"]
                out[f"{dst}attn.in_proj_{p}"] = torch.cat(qkv)
                out.update({f"{dst}{a}.{p}": hf[f"{src}{b}.{p}"] for a, b in block.items()})
    tower = {"width": t["width"], "layers": t["layers"]}
    model_cfg = {
        "embed_dim": t["embed"],
        "quick_gelu": True,  # transformers' CLIP default activation
        "vision_cfg": {
            **tower,
            "image_size": t["size"],
            "patch_size": t["patch"],
            "head_width": t["width"] // t["heads"],
        },
        "text_cfg": {**tower, "context_length": 77, "vocab_size": 49408, "heads": t["heads"]},
    }
    preprocess = {"size": t["size"], "mean": OPENAI_MEAN, "std": OPENAI_STD}
    folder.mkdir()
    config = {"model_cfg": model_cfg, "preprocess_cfg": preprocess}
    (folder / "open_clip_config.json").write_text(json.dumps(config))
    assert set(out) == set(open_clip_model_keys(model_cfg))
    torch.save(out, folder / "open_clip_pytorch_model.bin")


def open_clip_model_keys(model_cfg: dict) -> list[str]:
    import open_clip

    return list(open_clip.CLIP(**model_cfg).state_dict())


def test_clip_torchmetrics_matches_torchmetrics_on_a_tiny_random_clip(tmp_path) -> None:
    """One tiny random CLIP, scored by torchmetrics through transformers and by isoeps through
    ``clip:<arch>:<path>`` (open_clip): ``clip_torchmetrics`` is torchmetrics' number, and
    ``clip_score`` differs from it once a pair's cosine is negative."""
    import torch
    from torchmetrics.functional import multimodal as functional
    from transformers import CLIPModel, CLIPProcessor

    hf_dir, open_clip_dir = tmp_path / "hf", tmp_path / "open_clip"
    # Seed 5 on these pairs gives cosines of both signs with a positive mean (checked below),
    # where the two definitions differ.
    _save_as_open_clip(_save_hf_clip(hf_dir, seed=5), open_clip_dir)

    class FeatureTensors(CLIPModel):
        # transformers 5 returns a ModelOutput from get_*_features, where torchmetrics 1.9
        # expects the projected embeddings themselves (its pooler_output).
        def get_image_features(self, *args, **kwargs):
            return super().get_image_features(*args, **kwargs).pooler_output

        def get_text_features(self, *args, **kwargs):
            return super().get_text_features(*args, **kwargs).pooler_output

    def load():
        return FeatureTensors.from_pretrained(hf_dir).eval(), CLIPProcessor.from_pretrained(hf_dir)

    split = shape_split(16, seed=3, split="reference")
    images, captions = textured_images(16), [c[0] for c in split.captions]
    with torch.no_grad():
        expected = float(functional.clip_score(list(torch.from_numpy(images)), captions, load))
    backbone = f"clip:tiny-random:{open_clip_dir}"
    cosines = clip_cosines(
        load_backbone(backbone).features(images), load_backbone(backbone).text_features(captions)
    )
    assert (cosines < 0).any() and cosines.mean() > 0, cosines
    inputs = MetricInputs(fake=images, fake_captions=captions, reference=split, eval=split)
    metric = CLIPScoreMetric(backbone=backbone, ci_resamples=50)
    per_pair, torchmetrics_style = metric.evaluate(inputs)
    assert torchmetrics_style.name == "clip_torchmetrics"
    assert torchmetrics_style.value == pytest.approx(expected, rel=1e-4, abs=1e-4)
    assert per_pair.name == "clip_score" and per_pair.value > torchmetrics_style.value + 0.5
    for row in (per_pair, torchmetrics_style):
        assert row.ci_low <= row.value <= row.ci_high
        assert row.details["ci"]["resampled"] == "fake" and row.details["ci"]["resamples"] == 50
