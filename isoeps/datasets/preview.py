"""Summaries and captioned sample grids of loaded splits (for ``isoeps data inspect``)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from isoeps.datasets.base import ImageSplit
from isoeps.datasets.stats import attribute_frequencies


def summary(split: ImageSplit) -> dict[str, Any]:
    counts = [len(c) for c in split.captions]
    return {
        "split": split.split,
        "count": len(split),
        "shape": list(split.images.shape[1:]),
        "captions_per_image": {
            "mean": float(np.mean(counts)) if counts else 0.0,
            "min": int(min(counts, default=0)),
            "max": int(max(counts, default=0)),
        },
        "example_captions": split.captions[0][:2] if len(split) else [],
        "attribute_frequencies": attribute_frequencies(split),
        "info": {k: v for k, v in split.info.items() if k != "skipped_examples"},
    }


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        return ImageFont.load_default()


def captioned_grid(
    splits: Mapping[str, ImageSplit],
    path: str | Path,
    *,
    per_row: int = 6,
    cell: int = 160,
    max_caption_lines: int = 10,
) -> Path:
    """Write a PNG: one row per split (labelled), each image upscaled with its first caption.

    Args:
        splits: ``{label: split}``; empty splits are left out.
        path: the PNG to write; its folder is created.
        per_row: how many images of each split are shown.
        cell: the side of each upscaled image, in pixels.
        max_caption_lines: the most wrapped caption lines under an image.

    Returns:
        ``path``, as a ``Path``.
    """
    font, title_font = _font(12), _font(16)
    line_height = 15
    label_h = 24
    chars = max(10, int(cell / 6.6))
    rows = [(name, split) for name, split in splits.items() if len(split)]
    caption_lines = min(
        max_caption_lines,
        max(
            (
                len(textwrap.wrap(split.captions[i][0], width=chars))
                for _, split in rows
                for i in range(min(per_row, len(split)))
            ),
            default=1,
        ),
    )
    text_h = caption_lines * line_height + 6
    width = per_row * (cell + 8) + 8
    height = sum(label_h + cell + text_h + 8 for _ in rows) + 8
    canvas = Image.new("RGB", (width, max(height, 40)), "white")
    draw = ImageDraw.Draw(canvas)
    y = 8
    for name, split in rows:
        draw.text(
            (8, y + 2),
            f"{split.dataset} / {name} ({len(split)} images, "
            f"{split.resolution}x{split.resolution})",
            fill="black",
            font=title_font,
        )
        y += label_h
        for col in range(min(per_row, len(split))):
            x = 8 + col * (cell + 8)
            image = Image.fromarray(np.ascontiguousarray(split.images[col].transpose(1, 2, 0)))
            canvas.paste(image.resize((cell, cell), Image.Resampling.NEAREST), (x, y))
            lines = textwrap.wrap(split.captions[col][0], width=chars)[:caption_lines]
            for k, line in enumerate(lines):
                draw.text((x, y + cell + 3 + k * line_height), line, fill="black", font=font)
        y += cell + text_h + 8
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(path)
    return path
