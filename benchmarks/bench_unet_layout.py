"""The tiny UNet's denoising pass in contiguous vs channels_last layout (best of 4, alternating).

    .venv/bin/python benchmarks/bench_unet_layout.py
"""

import time

import torch
from diffusers import UNet2DConditionModel

torch.set_num_threads(1)
unet = UNet2DConditionModel(sample_size=32, in_channels=3, out_channels=3,
    down_block_types=("DownBlock2D", "DownBlock2D", "CrossAttnDownBlock2D"),
    up_block_types=("CrossAttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
    block_out_channels=(32, 64, 64), layers_per_block=1, cross_attention_dim=384,
    attention_head_dim=8, norm_num_groups=16).eval()
x, text = torch.randn(128, 3, 32, 32), torch.randn(128, 16, 384)
def run(m, xx):
    with torch.inference_mode(): return m(xx, 500, encoder_hidden_states=text).sample
base = run(unet, x)
import copy

cl = copy.deepcopy(unet).to(memory_format=torch.channels_last)
xc = x.contiguous(memory_format=torch.channels_last)
t = {"base": [], "cl": []}
for _ in range(4):
    s = time.perf_counter(); run(unet, x); t["base"].append(time.perf_counter() - s)
    s = time.perf_counter(); y = run(cl, xc); t["cl"].append(time.perf_counter() - s)
print({k: min(v) for k, v in t.items()}, "ratio", min(t["base"]) / min(t["cl"]), "maxdiff", (y - base).abs().max().item())
