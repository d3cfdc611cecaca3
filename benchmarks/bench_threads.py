"""Does a cell use two cores, or do two one-thread cells get more done? (``--jobs`` choice)

    .venv/bin/python benchmarks/bench_threads.py [--repeats 3]

For the three loops that dominate a quick-suite cell on a CPU (the AR transformer's training
step, the tiny UNet's denoising step, Inception features), the time per call with 1 thread and
with 2 threads in the same process, best of ``--repeats``. ``speedup_2_threads`` = t(1) / t(2):
when it is well below 2, two one-thread cells side by side (``--jobs 2``) finish more work per
second than one two-thread cell, by 2 / speedup.
"""

from __future__ import annotations

import argparse
import json
import time


def _best(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _ar_step():
    import torch

    from isoeps.models.ar_transformer import ARConfig, ScaleCausalTransformer, per_example_loss

    model = ScaleCausalTransformer(
        ARConfig(
            vocab_sizes=(512,) * 3, tokens_per_scale=16, text_dim=384, dim=128, depth=4, heads=4
        )
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    batch = {
        "tokens": torch.randint(0, 512, (64, 48)),
        "text": torch.randn(64, 1, 384),
        "text_mask": torch.ones(64, 1, dtype=torch.bool),
    }

    def step():
        optimizer.zero_grad()
        per_example_loss(model, batch).mean().backward()
        optimizer.step()

    return step


def _unet_step():
    import torch
    from diffusers import UNet2DConditionModel

    unet = UNet2DConditionModel(
        sample_size=32,
        in_channels=3,
        out_channels=3,
        down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
        block_out_channels=(32, 64, 64),
        layers_per_block=1,
        cross_attention_dim=384,
        attention_head_dim=8,
        norm_num_groups=16,
    ).eval()
    x, text = torch.randn(256, 3, 32, 32), torch.randn(256, 16, 384)

    def step():
        with torch.inference_mode():
            unet(x, 500, encoder_hidden_states=text)

    return step


def _inception():
    import numpy as np

    from isoeps.metrics.backbones import InceptionBackbone

    backbone = InceptionBackbone()
    images = np.random.default_rng(0).integers(0, 256, (32, 3, 32, 32), dtype=np.uint8)
    return lambda: backbone.features(images, batch_size=32)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    for name, make in (
        ("ar_train_step_b64", _ar_step),
        ("unet_denoise_b256", _unet_step),
        ("inception_32_images", _inception),
    ):
        fn = make()
        row = {"loop": name}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            row[f"seconds_{threads}_thread"] = _best(fn, args.repeats)
        row["speedup_2_threads"] = row["seconds_1_thread"] / row["seconds_2_thread"]
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
