"""synthetic-scenes: one to three coloured shapes on textured ground, compositional captions."""

from __future__ import annotations

import random
from typing import ClassVar

import numpy as np

from isoeps.datasets.synthetic import _render as R
from isoeps.datasets.synthetic._common import Attribute, SyntheticSource

F = np.float32

SHAPES = ("circle", "square", "triangle")
COLORS = ("red", "green", "blue", "yellow", "purple", "white")
SIZES = ("small", "large")
COLOR_RGB = np.array(
    [
        [0.86, 0.15, 0.13],
        [0.18, 0.70, 0.22],
        [0.16, 0.30, 0.90],
        [0.97, 0.85, 0.15],
        [0.58, 0.22, 0.72],
        [0.96, 0.96, 0.94],
    ],
    dtype=F,
)
GROUND_RGB = np.array(
    [[0.35, 0.55, 0.25], [0.80, 0.70, 0.50], [0.30, 0.50, 0.65], [0.45, 0.44, 0.42]], dtype=F
)

COUNT = Attribute("count", ("one", "two", "three"), (0.2, 0.4, 0.4), (0.6, 0.3, 0.1))
SHAPE = Attribute("shape", SHAPES, (0.5, 0.25, 0.25), (0.15, 0.7, 0.15))
COLOR = Attribute(
    "color", COLORS, (0.30, 0.05, 0.25, 0.05, 0.30, 0.05), (0.05, 0.30, 0.05, 0.30, 0.05, 0.25)
)
SIZE = Attribute("size", SIZES, (0.6, 0.4), (0.2, 0.8))
GROUND = Attribute(
    "background", ("grass", "sand", "water", "stone"), (0.1, 0.4, 0.1, 0.4), (0.4, 0.1, 0.4, 0.1)
)
SLOTS = 3


class SyntheticScenes(SyntheticSource):
    """Procedural scenes: one to three shapes (circle, square, triangle) in six colours and two
    sizes, placed left to right on a textured ground (grass, sand, water, stone).

    Attributes: ``count``, ``background`` and, per slot 1..3 counted from the LEFT,
    ``shape_i``, ``color_i``, ``size_i`` (``none`` when the slot is empty). Captions are
    compositional and name every object with its size, colour and relative position
    ("a small red circle left of a large blue square on sand").

    Shift (``shift`` option; reference and eval always follow the private distribution):

    - ``attributes``: public has mostly single, large, green/yellow/white squares on grass or
      water; private has mostly two or three small red/blue/purple circles on sand or stone.
    - ``texture``: public objects and ground use texture family B (speckle, curls) instead of
      family A (diagonal weave, fine grain).
    - ``both`` (default): both. ``none``: public is drawn like private.
    """

    name: ClassVar[str] = "synthetic-scenes"
    description: ClassVar[str] = "procedural compositional shape scenes (embedded, no download)"
    id_prefix: ClassVar[str] = "scenes"
    shift_doc: ClassVar[str] = (
        "attributes: public has mostly single large green/yellow/white squares on grass/water, "
        "private mostly 2-3 small red/blue/purple circles on sand/stone; texture: public uses "
        "family B (speckle, curls) vs private family A (weave, grain); both: the two together "
        "(default); reference and eval follow private"
    )

    def attribute_schema(self) -> dict[str, list[str]]:
        schema = {"count": list(COUNT.values), "background": list(GROUND.values)}
        for i in range(1, SLOTS + 1):
            schema[f"shape_{i}"] = ["none", *SHAPES]
            schema[f"color_{i}"] = ["none", *COLORS]
            schema[f"size_{i}"] = ["none", *SIZES]
        return schema

    def render_chunk(self, rng, *, count, resolution, shift_attributes, shift_texture):
        """``count`` scenes, their attribute indices and captions.

        As :meth:`SyntheticSource.render_chunk`. Attributes ``shape_i``, ``color_i`` and
        ``size_i`` are 0 for an absent object ``i``, else the value's index plus 1.

        Args:
            rng: the chunk's generator; every draw comes from it.
            count: how many images.
            resolution: side length R of the square images, in pixels.
            shift_attributes: draw attributes from the shifted distribution (public split).
            shift_texture: draw the shifted texture family (public split).

        Returns:
            ``(images, {attribute: indices}, captions)``.
        """
        draw = lambda a, shape: rng.choice(
            len(a.values), size=shape, p=a.probabilities(shift_attributes)
        )
        n_objects = draw(COUNT, count) + 1
        present = np.arange(SLOTS)[None, :] < n_objects[:, None]
        shapes, colors, sizes = (draw(a, (count, SLOTS)) for a in (SHAPE, COLOR, SIZE))
        ground = draw(GROUND, count)
        attrs = {"count": n_objects - 1, "background": ground}
        for i in range(SLOTS):
            for key, values in (("shape", shapes), ("color", colors), ("size", sizes)):
                attrs[f"{key}_{i + 1}"] = np.where(present[:, i], values[:, i] + 1, 0)
        images = _draw(
            rng,
            n_objects,
            shapes,
            colors,
            sizes,
            ground,
            resolution=resolution,
            family_b=shift_texture,
        )
        text_rng = random.Random(int(rng.integers(2**63)))
        captions = [
            _captions(
                text_rng,
                [
                    (SHAPES[shapes[i, j]], COLORS[colors[i, j]], SIZES[sizes[i, j]])
                    for j in range(n_objects[i])
                ],
                GROUND.values[ground[i]],
                self.config.captions_per_image,
            )
            for i in range(count)
        ]
        return images, attrs, captions


def _draw(rng, n_objects, shapes, colors, sizes, ground, *, resolution, family_b):
    n, res = len(n_objects), resolution
    u, v = R.coords(res)
    base = np.clip(GROUND_RGB[ground] + rng.uniform(-0.05, 0.05, (n, 3)).astype(F), 0, 1)
    object_tex = R.curls(rng, n, res) if family_b else R.pores(rng, n, res)
    # Objects cover the ground, so the weave may reuse the objects' grain.
    ground_tex = (
        R.speckle(rng, n, res) if family_b else R.weave(rng, n, res, u, v, grain=object_tex)
    )
    canvas = np.empty((n, 3, res, res), dtype=F)
    canvas[:] = R.shade(base, ground_tex, 0.18) * (F(0.9) + F(0.2) * (v[:, None] + 1) / 2)
    # Slots spread the objects left to right, so slot order is the caption's left-to-right order.
    slot_x = {1: [0.0], 2: [-0.45, 0.45], 3: [-0.62, 0.0, 0.62]}
    for j in range(SLOTS):
        cx = np.array([slot_x[k][j] if j < k else 0.0 for k in n_objects], dtype=F)
        cx = R.col(cx + rng.uniform(-0.06, 0.06, n).astype(F))
        cy = R.col(rng.uniform(-0.3, 0.3, n))
        large = np.where(n_objects == 3, 0.27, 0.36)
        radius = R.col(np.where(sizes[:, j] == 1, large, 0.15))
        distance = np.select(
            [(shapes[:, j] == 0)[:, None, None], (shapes[:, j] == 1)[:, None, None]],
            [
                R.ellipse(u, v, cx, cy, radius, radius),
                R.box(u, v, cx, cy, radius * 0.82, radius * 0.82),
            ],
            R.triangle(u, v, cx, cy + radius * 0.2, radius * 1.25),
        )
        color = np.clip(COLOR_RGB[colors[:, j]] + rng.uniform(-0.04, 0.04, (n, 3)).astype(F), 0, 1)
        shadow = R.soft(distance - 0.03, res) * R.col(j < n_objects)
        canvas *= F(1) - F(0.25) * np.roll(shadow, (max(1, res // 32),) * 2, axis=(1, 2))[:, None]
        R.paint(
            canvas, R.soft(distance, res) * R.col(j < n_objects), R.shade(color, object_tex, 0.12)
        )
    return np.clip(np.rint(canvas * 255), 0, 255).astype(np.uint8)


_SIZE_WORDS = {"small": ["small", "little", "tiny"], "large": ["large", "big"]}


def _captions(
    rng: random.Random, objects: list[tuple[str, str, str]], ground: str, k: int
) -> list[str]:
    out = []
    for _ in range(k):
        phrases = [
            f"a {rng.choice(_SIZE_WORDS[size])} {color} {shape}" for shape, color, size in objects
        ]
        if len(phrases) == 1:
            body = phrases[0]
        elif len(phrases) == 2:
            body = rng.choice(
                [f"{phrases[0]} left of {phrases[1]}", f"{phrases[1]} right of {phrases[0]}"]
            )
        else:
            body = rng.choice(
                [
                    f"{phrases[0]}, {phrases[1]} and {phrases[2]} from left to right",
                    f"{phrases[1]} between {phrases[0]} on the left and {phrases[2]} on the right",
                ]
            )
        where = rng.choice([f"on {ground}", f"on a {ground} background"])
        out.append(f"{body} {where}")
    return out
