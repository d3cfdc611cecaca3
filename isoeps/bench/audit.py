"""The one-run privacy audit of one cell (Steinke, Nasr and Jagielski, arXiv:2305.08846).

An audited cell is a run of its own, never the unaudited cell's: m canaries, distinctive
out-of-distribution images with distinctive captions, are each added to the private split by
an independent fair coin (:func:`isoeps.privacy.audit_coins.canary_coins`, a stream no method
is handed) *before* the guard wraps it, so that the method, delta and the ledger all see one
private split. After the normal fit the method samples from every canary's caption (and, if
asked, from the open prompt); a canary's membership score is minus the distance from it to the
closest of those samples, in pixels:

    distance(c, x) = ||c - x||_2 / (255 sqrt(3 H W)),

the root-mean-square pixel difference on a [0, 1] scale. The k highest scores are guessed
members, the k lowest non-members, and :func:`isoeps.accountants.one_run_audit.
epsilon_lower_bound` turns the number of right guesses into epsilon_lower at confidence
1 - beta, at the cell's delta. The coins are written to ``audit.json`` only after ``fit`` has
returned and the guard is closed.

That is the black-box audit, for any method. The white-box audit (DP-SGD methods) inserts the
same canary records with the same coins, but the engine replaces each included canary's
gradient by a Dirac gradient on a coordinate of its own (:mod:`isoeps.privacy.
gradient_canaries`, after Nasr et al., arXiv:2302.07956), and the score is that coordinate of
the privatised update, summed over steps: it sees the noise scale directly.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from isoeps.accountants.one_run_audit import count_correct
from isoeps.errors import ConfigError

#: The audit kinds: samples scored against canary images, or Dirac gradient canaries.
KINDS = ("black-box", "white-box")
#: A canary record's id is this prefix and its index.
CANARY_ID_PREFIX = "audit-canary-"
#: The canaries' patterns are public (only the coins are secret): one fixed seed for all cells.
_CANARY_PATTERN_SEED = 20230514
#: Side of the square blocks of a canary's pattern, in pixels: blocks survive a method's
#: downsampling (a wavelet coarse scale) better than single pixels would.
_CANARY_BLOCK = 2


#: What a canary's membership score is, by audit kind (stored with every audit).
SCORES = {
    "black-box": "pixels: RMS difference on [0, 1], nearest sample from the canary's caption",
    "white-box": "gradient: the canary's Dirac coordinate of the privatised gradient sum, "
    "summed over DP-SGD steps",
}


class AuditError(ConfigError):
    """The audit cannot be run as asked (bad m, k or beta, or a cell with nothing to audit)."""


@dataclass(frozen=True, kw_only=True)
class AuditSettings:
    """How a cell is audited.

    Attributes:
        m: canaries, each included by a fair coin.
        k: guesses on each side (members: top k scores; non-members: bottom k); k <= m / 2.
        beta: one minus the confidence of the bound, in (0, 1).
        samples_per_canary: samples drawn from each canary's caption.
        open_samples: samples from the open prompt, compared with every canary.
        kind: ``black-box`` (any method: its samples against the canary images) or
            ``white-box`` (DP-SGD methods: Dirac gradient canaries in the engine).
    """

    m: int
    k: int
    beta: float = 0.05
    samples_per_canary: int = 1
    open_samples: int = 0
    kind: str = "black-box"

    def check(self) -> None:
        """Raise :class:`AuditError` for settings the bound cannot take."""
        if isinstance(self.m, bool) or not isinstance(self.m, int) or self.m < 1:
            raise AuditError(f"audit m must be an integer >= 1 canaries, got {self.m!r}")
        if not isinstance(self.k, int) or self.k < 1 or 2 * self.k > self.m:
            raise AuditError(
                f"audit k={self.k!r} must be an integer in [1, m/2] (top k and bottom k of "
                f"m={self.m} canaries are guessed; no canary is guessed twice)"
            )
        if not 0 < self.beta < 1:
            raise AuditError(f"audit beta must lie in (0, 1), got {self.beta!r}")
        if self.samples_per_canary < 1 or self.open_samples < 0:
            raise AuditError("audit samples_per_canary must be >= 1 and open_samples >= 0")
        if self.kind not in KINDS:
            raise AuditError(f"audit kind must be one of {list(KINDS)}, got {self.kind!r}")


def make_canaries(*, m: int, resolution: int, like: Any) -> Any:
    """m public canaries: random black-and-white block patterns, far from natural images and
    from each other, each with a caption no dataset uses.

    Args:
        m: how many.
        resolution: the images' side.
        like: the private split whose dataset, split name, schema and info they take (every
            attribute of a canary is value 0 of its schema).

    Returns:
        An ``ImageSplit`` of m canaries with ids ``audit-canary-<i>``.
    """
    from isoeps.datasets.base import ImageSplit

    rng = np.random.default_rng(_CANARY_PATTERN_SEED)
    blocks = -(-resolution // _CANARY_BLOCK)
    bits = rng.integers(0, 2, size=(m, 3, blocks, blocks), dtype=np.uint8) * 255
    images = bits.repeat(_CANARY_BLOCK, axis=2).repeat(_CANARY_BLOCK, axis=3)
    images = np.ascontiguousarray(images[:, :, :resolution, :resolution])
    attributes = like.attributes
    return ImageSplit(
        dataset=like.dataset,
        split=like.split,
        ids=[f"{CANARY_ID_PREFIX}{i}" for i in range(m)],
        images=images,
        captions=[[f"zqx canary glyph {i:05d} in static"] for i in range(m)],
        attributes={n: np.zeros(m, dtype=v.dtype) for n, v in attributes.items()}
        if attributes
        else None,
        attribute_schema=like.attribute_schema,
        info=dict(like.info),
    )


def with_canaries(*, private: Any, canaries: Any, coins: np.ndarray) -> Any:
    """The private split with the canaries whose coin came up ``True`` appended.

    Args:
        private: the cell's private ``ImageSplit``.
        canaries: the m canaries (:func:`make_canaries`).
        coins: bool ``(m,)``.

    Returns:
        One ``ImageSplit``: the private records, then the included canaries.
    """
    from isoeps.datasets.base import ImageSplit

    chosen = canaries.take(np.flatnonzero(coins))
    attributes = None
    if private.attributes:
        attributes = {
            n: np.concatenate([v, chosen.attributes[n]]) for n, v in private.attributes.items()
        }
    return ImageSplit(
        dataset=private.dataset,
        split=private.split,
        ids=[*private.ids, *chosen.ids],
        images=np.concatenate([private.images, chosen.images]),
        captions=[*private.captions, *chosen.captions],
        attributes=attributes,
        attribute_schema=private.attribute_schema,
        info=dict(private.info),
        shares_records_with=private.shares_records_with,
    )


def membership_scores(
    *, canaries: np.ndarray, per_canary: np.ndarray, shared: np.ndarray | None = None
) -> np.ndarray:
    """Minus each canary's pixel distance to the closest of its samples (see module docstring).

    Args:
        canaries: uint8 ``(m, 3, H, W)``.
        per_canary: uint8 ``(m, s, 3, H, W)``, the samples drawn from each canary's caption.
        shared: uint8 ``(n, 3, H, W)`` compared with every canary (open-prompt samples), or None.

    Returns:
        float ``(m,)``: higher means closer, i.e. more likely a member.
    """
    m = canaries.shape[0]
    target = canaries.reshape(m, 1, -1).astype(np.float64) / 255.0
    own = per_canary.reshape(m, per_canary.shape[1], -1).astype(np.float64) / 255.0
    dim = target.shape[-1]
    nearest = np.sqrt(((own - target) ** 2).mean(axis=-1)).min(axis=1)
    if shared is not None and len(shared):
        pool = shared.reshape(1, len(shared), dim).astype(np.float64) / 255.0
        # one canary at a time: (m, n, dim) at once would not fit for a large open pool
        others = np.array([np.sqrt(((pool[0] - t) ** 2).mean(axis=-1)).min() for t in target])
        nearest = np.minimum(nearest, others)
    return -nearest


@dataclass(frozen=True, kw_only=True)
class AuditOutcome:
    """What :func:`run_audit` measured (``audit.json`` adds the coins, scores and guesses)."""

    epsilon_lower: float
    target_epsilon: float | None
    epsilon_achieved: float
    delta: float
    m: int
    k: int
    beta: float
    correct: int
    included: int
    distance: str
    wall_time_s: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def run_audit(cell: Any, folder: Path, runtime: Any, *, settings: AuditSettings) -> AuditOutcome:
    """Audit ``cell`` as a separate run in ``folder``: canaries in, fit, score, bound.

    Black-box: the method samples from every canary's caption after ``fit`` and each canary is
    scored by the distance to its nearest sample. White-box: the DP-SGD engine puts each
    included canary's Dirac gradient in place of its record's gradient, and the score is the
    canary's coordinate of the privatised update (:mod:`isoeps.privacy.gradient_canaries`).

    Args:
        cell: the cell to audit (a private or ``inf`` budget).
        folder: the audited run's folder (created; its ``fit.json``, ``ledger.json`` and
            ``privacy.json`` are this run's, not the unaudited cell's).
        runtime: the device and execution settings.
        settings: kind, m, k, beta and the samples to draw.

    Returns:
        The bound beside the target and the re-accounted epsilon.

    Raises:
        AuditError: bad settings, a ``public`` cell, m larger than the private split, or a
            white-box audit of a method whose fit took no DP-SGD step through the engine.
        RefusedCell: the audited run's ledger is refused, or it reached private data late.
    """
    from isoeps.bench.cell_flow import fit_cell, refuse_late_access

    settings.check()
    if cell.budget == "public":
        raise AuditError(
            f"cell {cell.cell_id} has budget 'public': it trains on no private data, so there "
            "is nothing to audit"
        )
    started = time.time()
    secret: dict[str, Any] = {}  # the coins: in the harness's frame, never in the method's
    folder.mkdir(parents=True, exist_ok=True)
    gradient_canaries = _gradient_canaries(cell, settings)
    fitted = fit_cell(
        cell,
        folder,
        runtime,
        extend_private=lambda private: _add(cell, settings, private, secret),
        gradient_canaries=gradient_canaries,
    )
    canaries, coins = secret["canaries"], secret["coins"]
    if gradient_canaries is None:
        scores = _score(fitted.method, canaries, settings)
    else:
        scores = _white_box_scores(cell, gradient_canaries)
    refuse_late_access(cell, folder, fitted)
    correct, guesses = count_correct(scores=scores, coins=coins, k=settings.k)
    outcome = _outcome(cell, fitted, settings, correct, int(coins.sum()), started)
    _write(folder, outcome, settings, coins=coins, scores=scores, guesses=guesses)
    return outcome


def _gradient_canaries(cell: Any, settings: AuditSettings) -> Any:
    """The white-box audit's canaries for all m ids (coin-free), or None for black-box."""
    if settings.kind != "white-box":
        return None
    from isoeps.privacy.gradient_canaries import GradientCanaries

    ids = [f"{CANARY_ID_PREFIX}{i}" for i in range(settings.m)]
    return GradientCanaries(ids=ids, seed=_CANARY_PATTERN_SEED + int(cell.seed))


def _white_box_scores(cell: Any, gradient_canaries: Any) -> np.ndarray:
    if gradient_canaries.steps == 0:
        raise AuditError(
            f"white-box audit of {cell.cell_id}: method {cell.method_name!r} took no DP-SGD "
            "step through the engine (it releases through other mechanisms), so no gradient "
            "canary was seen; audit it black-box"
        )
    return gradient_canaries.scores


def _add(cell: Any, settings: AuditSettings, private: Any, secret: dict[str, Any]) -> Any:
    """Draw the coins and append the included canaries (``fit_cell``'s private-split hook)."""
    from isoeps.privacy.audit_coins import canary_coins

    if settings.m > len(private):
        raise AuditError(
            f"audit m={settings.m} canaries exceed the {len(private)} records of the private "
            "split: the canaries would outweigh the data they audit"
        )
    canaries = make_canaries(m=settings.m, resolution=private.resolution, like=private)
    coins = canary_coins(m=settings.m, cell_seed=cell.seed, secure=cell.secure)
    secret.update(canaries=canaries, coins=coins)
    return with_canaries(private=private, canaries=canaries, coins=coins)


def _score(method: Any, canaries: Any, settings: AuditSettings) -> np.ndarray:
    """The method's samples from every canary caption (and the open prompt), scored."""
    s = settings.samples_per_canary
    prompts = [caps[0] for caps in canaries.captions for _ in range(s)]
    images = np.asarray(method.sample(prompts, len(prompts)).images)
    per_canary = images.reshape(settings.m, s, *images.shape[1:])
    shared = None
    if settings.open_samples:
        shared = np.asarray(method.sample_unconditional(settings.open_samples).images)
    return membership_scores(canaries=canaries.images, per_canary=per_canary, shared=shared)


def _outcome(
    cell: Any,
    fitted: Any,
    settings: AuditSettings,
    correct: int,
    included: int,
    started: float,
) -> AuditOutcome:
    from isoeps.accountants.one_run_audit import epsilon_lower_bound

    bound = epsilon_lower_bound(
        m=settings.m,
        k_plus=settings.k,
        k_minus=settings.k,
        correct=correct,
        beta=settings.beta,
        delta=fitted.delta,
    )
    return AuditOutcome(
        epsilon_lower=bound,
        target_epsilon=cell.epsilon,
        epsilon_achieved=float(fitted.privacy["epsilon_achieved"]),
        delta=float(fitted.delta),
        m=settings.m,
        k=settings.k,
        beta=settings.beta,
        correct=correct,
        included=included,
        distance=SCORES[settings.kind],
        wall_time_s=time.time() - started,
    )


def _write(
    folder: Path,
    outcome: AuditOutcome,
    settings: AuditSettings,
    *,
    coins: np.ndarray,
    scores: np.ndarray,
    guesses: np.ndarray,
) -> None:
    from isoeps.results import folders

    folders.write_json_atomic(
        folder / folders.AUDIT,
        {
            **outcome.to_dict(),
            "settings": asdict(settings),
            "kind": settings.kind,
            "reference": "Steinke, Nasr, Jagielski 2023, arXiv:2305.08846, Theorem 3",
            "coins": [bool(c) for c in coins],
            "scores": [float(s) for s in scores],
            "guesses": [int(g) for g in guesses],
        },
    )
