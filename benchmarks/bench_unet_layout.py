"""The tiny UNet's denoising pass in contiguous vs channels_last layout (best of 4, alternating).

    .venv/bin/python benchmarks/bench_unet_layout.py

One thread, batch 128, 32x32, the dpagg-ti UNet's shape. Prints the best time per layout, their
ratio and the largest output difference between the layouts.
"""

from __future__ import annotations

import copy
import time

import torch
from diffusers import UNet2DConditionModel

REPEATS = 4


def main() -> None:
    torch.set_num_threads(1)
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
    x, text = torch.randn(128, 3, 32, 32), torch.randn(128, 16, 384)

    def denoise(model: UNet2DConditionModel, images: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model(images, 500, encoder_hidden_states=text).sample

    reference = denoise(unet, x)
    channels_last = copy.deepcopy(unet).to(memory_format=torch.channels_last)
    x_last = x.contiguous(memory_format=torch.channels_last)
    times: dict[str, list[float]] = {"contiguous": [], "channels_last": []}
    for _ in range(REPEATS):
        start = time.perf_counter()
        denoise(unet, x)
        times["contiguous"].append(time.perf_counter() - start)
        start = time.perf_counter()
        out = denoise(channels_last, x_last)
        times["channels_last"].append(time.perf_counter() - start)
    best = {layout: min(values) for layout, values in times.items()}
    print(
        best,
        "ratio",
        best["contiguous"] / best["channels_last"],
        "maxdiff",
        (out - reference).abs().max().item(),
    )


if __name__ == "__main__":
    main()
