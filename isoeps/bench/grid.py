"""The captioned sample grid stored in each run folder (PIL: no plotting stack per cell)."""

from __future__ import annotations

import io
import math
import textwrap
from pathlib import Path

import numpy as np

TILE = 96  # pixels per image side in the grid (nearest-neighbour upscaling keeps pixels honest)
CAPTION_LINES = 3
LINE_HEIGHT = 11


def save_grid(path: Path, images: np.ndarray, captions: list[str], *, title: str) -> None:
    """A grid of uint8 ``(n, 3, H, W)`` images, each above its wrapped caption.

    Nothing is written for no images. The PNG is written atomically.

    Args:
        path: the PNG to write.
        images: uint8 ``(n, 3, H, W)``.
        captions: one caption per image.
        title: the line above the grid.
    """
    from PIL import Image, ImageDraw, ImageFont

    from isoeps.results.folders import write_bytes_atomic

    count = len(images)
    if count == 0:
        return
    cols = min(6, count)
    rows = math.ceil(count / cols)
    cell_h = TILE + CAPTION_LINES * LINE_HEIGHT + 6
    header = 18
    canvas = Image.new("RGB", (cols * (TILE + 6) + 6, header + rows * cell_h), "white")
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    draw.text((6, 3), title, fill="black", font=font)
    for k in range(count):
        x = 6 + (k % cols) * (TILE + 6)
        y = header + (k // cols) * cell_h
        tile = Image.fromarray(np.ascontiguousarray(images[k].transpose(1, 2, 0)))
        canvas.paste(tile.resize((TILE, TILE), Image.NEAREST), (x, y))
        for line, text in enumerate(textwrap.wrap(captions[k], 16)[:CAPTION_LINES]):
            draw.text((x, y + TILE + 2 + line * LINE_HEIGHT), text, fill="black", font=font)
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    write_bytes_atomic(Path(path), buffer.getvalue())
