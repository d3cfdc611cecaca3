"""synthetic-faces: procedural portraits with CelebA-style attributes and captions."""

from __future__ import annotations

import random
from typing import ClassVar

import numpy as np

from isoeps.datasets.synthetic import _render as R
from isoeps.datasets.synthetic._common import Attribute, SyntheticSource

F = np.float32

ATTRIBUTES: tuple[Attribute, ...] = (
    Attribute("gender", ("woman", "man"), (0.5, 0.5), (0.8, 0.2)),
    Attribute(
        "hair_color",
        ("black", "brown", "blond", "red", "gray"),
        (0.10, 0.15, 0.35, 0.30, 0.10),
        (0.45, 0.40, 0.05, 0.05, 0.05),
    ),
    Attribute("hair_style", ("short", "long", "bangs"), (0.30, 0.40, 0.30), (0.60, 0.35, 0.05)),
    Attribute("eyeglasses", ("no", "yes"), (0.5, 0.5), (0.9, 0.1)),
    Attribute("smiling", ("no", "yes"), (0.3, 0.7), (0.8, 0.2)),
    # Drawn for everyone, then forced to "no" for women; so P(beard) = P(man) * p(yes).
    Attribute("beard", ("no", "yes"), (0.4, 0.6), (0.9, 0.1)),
    Attribute("skin_tone", ("light", "medium", "dark"), (0.3, 0.3, 0.4), (0.6, 0.3, 0.1)),
    Attribute(
        "background",
        ("blue", "green", "gray", "orange"),
        (0.15, 0.35, 0.15, 0.35),
        (0.40, 0.10, 0.40, 0.10),
    ),
)

HAIR_RGB = np.array(
    [
        [0.09, 0.07, 0.07],
        [0.40, 0.23, 0.12],
        [0.93, 0.80, 0.45],
        [0.78, 0.27, 0.10],
        [0.70, 0.70, 0.72],
    ],
    dtype=F,
)
SKIN_RGB = np.array([[0.97, 0.83, 0.73], [0.80, 0.60, 0.44], [0.45, 0.30, 0.21]], dtype=F)
BACKGROUND_RGB = np.array(
    [[0.28, 0.42, 0.82], [0.30, 0.64, 0.32], [0.55, 0.55, 0.56], [0.93, 0.56, 0.22]], dtype=F
)
EYE_RGB = np.array([[0.25, 0.15, 0.08], [0.20, 0.40, 0.70], [0.25, 0.50, 0.30]], dtype=F)


class SyntheticFaces(SyntheticSource):
    """Procedural faces with CelebA-like attributes and MM-CelebA-HQ-style captions.

    Attributes (all visible at 32x32): gender (face width, lips, brows), hair colour (a large
    coloured region), hair style (short / long / bangs over the forehead), eyeglasses (dark
    lenses and frame), smiling (open curved mouth with teeth), beard (men only), skin tone and
    background colour. Fine texture: hair strands, skin grain, woven background.

    Every caption names the gender, hair colour and style, skin tone and background, and each
    PRESENT binary attribute (eyeglasses, smile, beard); an absent one is never mentioned.

    Shift (``shift`` option; reference and eval always follow the private distribution):

    - ``attributes``: public attribute frequencies differ strongly from private ones (mostly
      women with black/brown short hair, few glasses, smiles or beards, light skin, blue/gray
      backgrounds; private has many blond/red heads, glasses, smiles, darker skin and
      green/orange backgrounds). Mean total-variation distance over attributes is about 0.35.
    - ``texture``: public images use texture family B (curly hair, horizontally streaked skin,
      speckled background) instead of family A (radial hair strands, isotropic skin grain,
      diagonal weave), so a public super-resolution model does not know private detail.
    - ``both`` (default): both of the above. ``none``: public is drawn like private.
    """

    name: ClassVar[str] = "synthetic-faces"
    description: ClassVar[str] = (
        "procedural captioned faces with attributes (embedded, no download)"
    )
    id_prefix: ClassVar[str] = "faces"
    shift_doc: ClassVar[str] = (
        "attributes: public frequencies skewed (women, black/brown short hair, few glasses/"
        "smiles/beards, light skin, blue/gray backgrounds); texture: public uses family B "
        "(curls, streaked skin, speckle) vs private family A (strands, skin grain, weave); "
        "both: the two together (default); reference and eval follow private"
    )

    def attribute_schema(self) -> dict[str, list[str]]:
        return {a.name: list(a.values) for a in ATTRIBUTES}

    def render_chunk(self, rng, *, count, resolution, shift_attributes, shift_texture):
        """``count`` faces, their attribute indices and captions.

        As :meth:`SyntheticSource.render_chunk`.

        Args:
            rng: the chunk's generator; every draw comes from it.
            count: how many images.
            resolution: side length R of the square images, in pixels.
            shift_attributes: draw attributes from the shifted distribution (public split).
            shift_texture: draw the shifted texture family (public split).

        Returns:
            ``(images, {attribute: indices}, captions)``.
        """
        attrs = {
            a.name: rng.choice(len(a.values), size=count, p=a.probabilities(shift_attributes))
            for a in ATTRIBUTES
        }
        attrs["beard"] = attrs["beard"] * (attrs["gender"] == 1)
        images = _draw(rng, attrs, count=count, resolution=resolution, family_b=shift_texture)
        text_rng = random.Random(int(rng.integers(2**63)))
        captions = [
            _captions(
                text_rng, {k: int(v[i]) for k, v in attrs.items()}, self.config.captions_per_image
            )
            for i in range(count)
        ]
        return images, attrs, captions


class _Frame:
    """Face-frame coordinates of a chunk, and the pixel windows that features occupy.

    Each face is shifted and scaled a little; a feature that spans a small box in the face
    frame is rendered only inside the union of its boxes over the chunk, which keeps the many
    small parts (eyes, brows, mouth, glasses) cheap.
    """

    def __init__(self, rng: np.random.Generator, n: int, res: int) -> None:
        self.res = res
        self.u0, self.v0 = R.coords(res)
        self.scale = rng.uniform(0.92, 1.06, n).astype(F)
        self.dx = rng.uniform(-0.06, 0.06, n).astype(F)
        self.dy = rng.uniform(-0.04, 0.06, n).astype(F)
        self.u = (self.u0 - R.col(self.dx)) / R.col(self.scale)
        self.v = (self.v0 - R.col(self.dy)) / R.col(self.scale)

    def window(self, u_lo: float, u_hi: float, v_lo: float, v_hi: float) -> tuple[slice, slice]:
        def pixels(lo: float, hi: float, shift: np.ndarray) -> slice:
            a = float(np.min(lo * self.scale + shift))
            b = float(np.max(hi * self.scale + shift))
            first = int(np.floor((a + 1) / 2 * self.res - 1.5))
            last = int(np.ceil((b + 1) / 2 * self.res + 1.5))
            return slice(max(first, 0), max(min(last, self.res), 0))

        return pixels(v_lo, v_hi, self.dy), pixels(u_lo, u_hi, self.dx)

    def at(self, ys: slice, xs: slice) -> tuple[np.ndarray, np.ndarray]:
        return self.u[:, ys, xs], self.v[:, ys, xs]


class _Canvas:
    """A chunk's image buffer ``(N, 3, R, R)`` and the painter of face features into it."""

    def __init__(self, frame: _Frame, n: int, res: int) -> None:
        self.frame, self.res = frame, res
        self.pixels = np.empty((n, 3, res, res), dtype=F)

    def paint(self, window: tuple[slice, slice], coverage, color: np.ndarray, where=None) -> None:
        """Paint ``coverage(u, v)`` (a signed distance) inside ``window`` for images ``where``."""
        ys, xs = window
        mask = R.soft(coverage(*self.frame.at(ys, xs)), self.res)
        if where is not None:
            mask = mask * R.col(where)
        color = color if color.ndim == 2 else color[:, :, ys, xs]
        R.paint(self.pixels[:, :, ys, xs], mask, color)


def _draw(
    rng: np.random.Generator,
    attrs: dict[str, np.ndarray],
    *,
    count: int,
    resolution: int,
    family_b: bool,
) -> np.ndarray:
    """Render a chunk of faces as uint8 ``(count, 3, R, R)``, back to front.

    The draws from ``rng`` come in this order (it fixes every image of a seed): the face
    frames, the hair, skin and background jitters, the shirt colours, the textures, the iris
    colours, the lighting.
    """
    n, res = count, resolution
    frame = _Frame(rng, n, res)
    jitter = lambda base: np.clip(base + rng.uniform(-0.04, 0.04, (n, 3)).astype(F), 0, 1)
    hair = jitter(HAIR_RGB[attrs["hair_color"]])
    skin = jitter(SKIN_RGB[attrs["skin_tone"]])
    background = jitter(BACKGROUND_RGB[attrs["background"]])
    shirt = rng.uniform(0.15, 0.85, (n, 3)).astype(F)
    hair_tex, skin_tex, bg_tex = _textures(rng, frame, n, res, family_b=family_b)

    canvas = _Canvas(frame, n, res)
    canvas.pixels[:] = R.shade(background, bg_tex, 0.14) * (
        F(1.08) - F(0.16) * (frame.v0[:, None] + 1) / 2
    )
    face_rx = R.col(np.where(attrs["gender"] == 1, 0.43, 0.37))
    _paint_head(
        canvas,
        attrs,
        face_rx,
        hair_px=R.shade(hair, hair_tex, 0.28),
        skin_px=R.shade(skin, skin_tex, 0.07),
        skin=skin,
        shirt_px=R.shade(shirt, skin_tex, 0.05),
    )
    _paint_eyes(canvas, rng, attrs, face_rx, hair, skin)
    # Beard: the lower face plus a moustache band, in the (darkened) hair colour.
    canvas.paint(
        frame.window(-0.46, 0.46, 0.14, 0.61),
        lambda u, v: np.maximum(R.ellipse(u, v, 0, 0.06, face_rx + 0.02, 0.54), 0.16 - v),
        R.shade(np.clip(hair * F(0.8), 0, 1), hair_tex, 0.3),
        where=attrs["beard"] == 1,
    )
    _paint_mouth(canvas, attrs, skin)
    _paint_glasses(canvas, attrs, face_rx)

    light = F(1) + R.col(rng.uniform(-0.08, 0.08, n)) * frame.u0
    return np.clip(np.rint(canvas.pixels * light[:, None] * 255), 0, 255).astype(np.uint8)


def _textures(
    rng: np.random.Generator, frame: _Frame, n: int, res: int, *, family_b: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hair, skin and background textures of the chunk's texture family."""
    if family_b:
        hair_tex = R.curls(rng, n, res)
        skin_tex = R.scanlines(rng, n, res)
        bg_tex = R.speckle(rng, n, res)
    else:
        skin_tex = R.pores(rng, n, res)
        # Hair and skin overlap only where the beard hides the skin, and the skin hides the
        # background, so one grain field serves all three.
        hair_tex = R.strands(rng, n, res, frame.u, frame.v, 0.0, -0.55, grain=skin_tex)
        bg_tex = R.weave(rng, n, res, frame.u0, frame.v0, grain=skin_tex)
    return hair_tex, skin_tex, bg_tex


def _paint_head(
    canvas: _Canvas,
    attrs: dict[str, np.ndarray],
    face_rx: np.ndarray,
    *,
    hair_px: np.ndarray,
    skin_px: np.ndarray,
    skin: np.ndarray,
    shirt_px: np.ndarray,
) -> None:
    """Long hair behind, the shoulders, neck, ears and face, then the hair cap."""
    frame, paint = canvas.frame, canvas.paint
    paint(
        frame.window(-0.64, 0.64, -0.74, 0.98),
        lambda u, v: np.minimum(
            R.ellipse(u, v, 0, 0.12, face_rx + 0.2, 0.85), R.box(u, v, 0, 0.55, face_rx + 0.2, 0.42)
        ),
        hair_px,
        where=attrs["hair_style"] == 1,
    )
    paint(
        frame.window(-0.96, 0.96, 0.82, 1.94),
        lambda u, v: R.ellipse(u, v, 0, 1.38, 0.95, 0.55),
        shirt_px,
    )
    paint(
        frame.window(-0.16, 0.16, 0.31, 0.93),
        lambda u, v: R.box(u, v, 0, 0.62, 0.15, 0.3),
        skin * F(0.88),
    )
    for side in (-1.0, 1.0):
        lo, hi = sorted((side * 0.36 - 0.08 * side, side * 0.5 + 0.08 * side))
        paint(
            frame.window(lo, hi, -0.08, 0.16),
            lambda u, v, side=side: R.ellipse(u, v, side * face_rx, 0.04, 0.07, 0.11),
            skin * F(0.95),
        )
    paint(
        frame.window(-0.44, 0.44, -0.51, 0.55),
        lambda u, v: R.ellipse(u, v, 0, 0.02, face_rx, 0.52),
        skin_px,
    )
    # Hair cap above a curved hairline; bangs bring the hairline down to the brows.
    hairline = R.col(np.where(attrs["hair_style"] == 2, -0.17, -0.33))
    paint(
        frame.window(-0.53, 0.53, -0.70, 0.0),
        lambda u, v: np.maximum(
            R.ellipse(u, v, 0, -0.17, face_rx + 0.09, 0.52), v - hairline - F(0.5) * u**2
        ),
        hair_px,
    )


def _paint_eyes(
    canvas: _Canvas,
    rng: np.random.Generator,
    attrs: dict[str, np.ndarray],
    face_rx: np.ndarray,
    hair: np.ndarray,
    skin: np.ndarray,
) -> None:
    """Brows, eyes (drawing the iris colours from ``rng``) and the nose."""
    frame, paint = canvas.frame, canvas.paint
    n = len(hair)
    brow_thick = R.col(np.where(attrs["gender"] == 1, 0.035, 0.022))
    brow = np.clip(hair * F(0.6), 0, 1)
    white = np.full((n, 3), 0.96, dtype=F)
    iris = EYE_RGB[rng.integers(0, 3, n)]
    for side in (-1.0, 1.0):
        cx = side * 0.16
        paint(
            frame.window(cx - 0.1, cx + 0.1, -0.17, -0.09),
            lambda u, v, cx=cx: R.box(u, v, cx, -0.13, 0.09, brow_thick),
            brow,
        )
        eye = frame.window(cx - 0.08, cx + 0.08, -0.08, 0.02)
        paint(eye, lambda u, v, cx=cx: R.ellipse(u, v, cx, -0.03, 0.075, 0.042), white)
        paint(eye, lambda u, v, cx=cx: R.ellipse(u, v, cx, -0.03, 0.036, 0.036), iris)
    paint(
        frame.window(-0.05, 0.05, 0.05, 0.21),
        lambda u, v: R.ellipse(u, v, 0, 0.13, 0.045, 0.07),
        skin * F(0.8),
    )


def _paint_mouth(canvas: _Canvas, attrs: dict[str, np.ndarray], skin: np.ndarray) -> None:
    """Smile: a wide crescent whose corners turn up, open on white teeth. Neutral: a thin line."""
    n = len(skin)
    lips = np.where(
        (attrs["gender"] == 1)[:, None],
        skin * F(0.7) + F(0.08) * np.array([1, 0, 0], F),
        np.array([0.80, 0.22, 0.30], F),
    ).astype(F)
    smiling = attrs["smiling"] == 1

    def crescent(u, v):
        top = F(0.25) - F(1.6) * u**2
        bottom = F(0.36) - F(4.4) * u**2
        return np.maximum(np.maximum(top - v, v - bottom), np.abs(u) - F(0.18)), top

    mouth = canvas.frame.window(-0.21, 0.21, 0.15, 0.39)
    paint = canvas.paint
    paint(mouth, lambda u, v: crescent(u, v)[0] - 0.02, lips, where=smiling)
    paint(
        mouth,
        lambda u, v: crescent(u, v)[0] + 0.005,
        np.full((n, 3), 0.35, F) * lips,
        where=smiling,
    )
    paint(
        mouth,
        lambda u, v: np.maximum(crescent(u, v)[0] + 0.005, v - crescent(u, v)[1] - 0.04),
        np.full((n, 3), 0.97, F),
        where=smiling,
    )
    paint(mouth, lambda u, v: R.ellipse(u, v, 0, 0.31, 0.13, 0.028), lips, where=~smiling)


def _paint_glasses(canvas: _Canvas, attrs: dict[str, np.ndarray], face_rx: np.ndarray) -> None:
    """Tinted lenses in dark rims, the temple arms and the bridge, where ``eyeglasses``."""
    frame, paint = canvas.frame, canvas.paint
    glasses = attrs["eyeglasses"] == 1
    dark = np.full((len(glasses), 3), 0.06, F)
    for side in (-1.0, 1.0):
        cx = side * 0.17
        ys, xs = lens_window = frame.window(cx - 0.14, cx + 0.14, -0.14, 0.07)
        lens = R.soft(R.ellipse(*frame.at(ys, xs), cx, -0.035, 0.12, 0.09), canvas.res)
        lens = lens * R.col(glasses)
        canvas.pixels[:, :, ys, xs] *= F(1) - F(0.55) * lens[:, None]
        paint(
            lens_window,
            lambda u, v, cx=cx: np.abs(R.ellipse(u, v, cx, -0.035, 0.12, 0.09)) - F(0.018),
            dark,
            where=glasses,
        )
        lo, hi = sorted((side * 0.26, side * 0.5))
        paint(
            frame.window(lo, hi, -0.07, -0.03),
            lambda u, v, side=side: R.box(u, v, side * (face_rx - 0.02), -0.05, 0.07, 0.014),
            dark,
            where=glasses,
        )
    paint(
        frame.window(-0.07, 0.07, -0.07, -0.03),
        lambda u, v: R.box(u, v, 0, -0.05, 0.06, 0.014),
        dark,
        where=glasses,
    )


_HAIR_STYLE = {0: "short", 1: "long", 2: "bangs"}
_SKIN = {0: ["light", "fair", "pale"], 1: ["medium", "olive", "tan"], 2: ["dark", "brown", "deep"]}


def _captions(rng: random.Random, a: dict[str, int], k: int) -> list[str]:
    names = {at.name: at.values for at in ATTRIBUTES}
    woman = a["gender"] == 0
    noun = (
        rng.choice(["woman", "lady", "girl"]) if woman else rng.choice(["man", "gentleman", "guy"])
    )
    pron, poss = ("She", "her") if woman else ("He", "his")
    out = []
    for _ in range(k):
        colour = names["hair_color"][a["hair_color"]]
        style = _HAIR_STYLE[a["hair_style"]]
        if style == "bangs":
            hair = rng.choice([f"{colour} hair with bangs", f"{colour} hair and bangs"])
        else:
            hair = f"{style} {colour} hair"
        subject = rng.choice([f"This {noun}", f"The {noun}", f"This {noun}", "The person"])
        sentences = [f"{subject} has {hair}."]
        clauses = []
        if a["eyeglasses"]:
            clauses.append(rng.choice(["wears eyeglasses", "is wearing glasses", "wears glasses"]))
        if a["smiling"]:
            clauses.append(rng.choice(["is smiling", "has a big smile", "smiles"]))
        if a["beard"]:
            clauses.append(rng.choice(["has a beard", "has a full beard"]))
        clauses.append(f"has {rng.choice(_SKIN[a['skin_tone']])} skin")
        rng.shuffle(clauses)
        if subject == "The person":
            sentences.append(f"{pron} is a {noun}.")
        while clauses:
            take = clauses[:2]
            clauses = clauses[2:]
            sentences.append(f"{pron} {' and '.join(take)}.")
        background = names["background"][a["background"]]
        sentences.append(
            rng.choice(
                [
                    f"The background is {background}.",
                    f"Behind {poss} head is a {background} background.",
                ]
            )
        )
        out.append(" ".join(sentences))
    return out
