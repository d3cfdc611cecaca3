"""Dirac gradient canaries inside a real DP-SGD run: the engine's side of the white-box audit.

Nasr et al. (arXiv:2302.07956) and Steinke, Nasr and Jagielski (arXiv:2305.08846, white-box
setting). Each of the m canary records is given one coordinate of the flattened trainable
parameters, drawn with a public seed. When a canary record is in a Poisson batch, the engine
drops its own per-example gradient and adds ``C e_coord`` in its place (norm C, so clipping
leaves it whole): the canary is one record, with one clipped contribution, as DP-SGD allows.
A canary's score is its coordinate of the privatised gradient sum (after the noise) minus
the ordinary records' clipped sum there, summed over steps: what is left is the canary's own
Dirac (when it was sampled) plus the noise, so the score sees the noise scale directly, however
the model's own gradients fall on that coordinate (they are large against the noise in a small
model). Subtracting the ordinary records' share keeps the audit sound: the one-run bound holds
for any guess computed from the released updates and from what is independent of the canaries
(the non-canary records and their Poisson bits), and the subsampled Gaussian's guarantee for one
record holds conditionally on every other record's contribution. The harness builds this object
for all m canaries, whatever their coins, so it says nothing about which of them are in the
private split.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from isoeps.errors import PrivacyError


class GradientCanaries:
    """The canary ids, their coordinates once bound, and their running scores.

    Args:
        ids: the record ids of all m canaries (included or not).
        seed: the public seed the coordinates are drawn with.
    """

    def __init__(self, *, ids: Sequence[str], seed: int) -> None:
        self._index = {str(record_id): i for i, record_id in enumerate(ids)}
        if len(self._index) != len(ids):
            raise PrivacyError("gradient canary ids must be distinct")
        self._seed = int(seed)
        self._layout: tuple[tuple[str, tuple[int, ...]], ...] | None = None
        self._where: list[tuple[str, int]] = []
        self._shapes: dict[str, tuple[int, ...]] = {}
        self._scores = np.zeros(len(ids), dtype=np.float64)
        self._ordinary: np.ndarray | None = None  # this step's ordinary share, before noise
        #: Privatised steps the canaries took part in (0: no DP-SGD step saw them).
        self.steps = 0

    @property
    def m(self) -> int:
        return len(self._index)

    @property
    def scores(self) -> np.ndarray:
        """Each canary's coordinate of the privatised gradient sums, less the ordinary
        records' share, summed over steps."""
        return self._scores.copy()

    @property
    def coordinates(self) -> list[tuple[str, int]]:
        """(parameter name, flat index) of each canary, once bound."""
        return list(self._where)

    def bind(self, params: Mapping[str, nn.Parameter]) -> None:
        """Draw one distinct coordinate per canary among ``params`` (once per audited run).

        Raises:
            PrivacyError: fewer coordinates than canaries, or a second DP-SGD run over other
                parameters (the audit follows one parameter set).
        """
        layout = tuple((name, tuple(p.shape)) for name, p in params.items())
        if self._layout is not None:
            if layout != self._layout:
                raise PrivacyError(
                    "the white-box audit follows one set of trainable parameters; this method "
                    "ran DP-SGD over a second, different set"
                )
            return
        sizes = np.array([int(np.prod(shape)) for _, shape in layout], dtype=np.int64)
        if sizes.sum() < self.m:
            raise PrivacyError(
                f"{self.m} gradient canaries need as many trainable coordinates; the model "
                f"has {int(sizes.sum())}"
            )
        rng = np.random.default_rng(self._seed)
        flat = np.sort(rng.choice(int(sizes.sum()), size=self.m, replace=False))
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        owner = np.searchsorted(starts, flat, side="right") - 1
        order = rng.permutation(self.m)  # which canary gets which coordinate
        where = [("", 0)] * self.m
        for canary, (o, f) in zip(order, zip(owner, flat)):
            where[int(canary)] = (layout[int(o)][0], int(f - starts[int(o)]))
        self._layout, self._where, self._shapes = layout, where, dict(layout)

    def split(self, ids: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Positions of a batch's ordinary records, and the canary index of its canaries."""
        found = [(pos, self._index.get(str(i))) for pos, i in enumerate(ids)]
        ordinary = np.array([pos for pos, c in found if c is None], dtype=np.int64)
        canaries = np.array([c for _, c in found if c is not None], dtype=np.int64)
        return ordinary, canaries

    def add(self, total: Mapping[str, Tensor], canaries: np.ndarray, *, clip_norm: float) -> None:
        """Note the ordinary records' clipped sum at every canary coordinate, then add
        ``clip_norm * e_coord`` to it for every canary in the batch."""
        self._ordinary = self._values(total)
        with torch.no_grad():
            for c in canaries:
                name, flat = self._where[int(c)]
                total[name][self._at(name, flat)] += clip_norm

    def observe(self, total: Mapping[str, Tensor]) -> None:
        """Add this step's privatised sum, less its ordinary share, to each canary's score."""
        if self._ordinary is None:
            raise PrivacyError("gradient canaries: observe() without add() for this step")
        self._scores += self._values(total) - self._ordinary
        self._ordinary = None
        self.steps += 1

    def _values(self, total: Mapping[str, Tensor]) -> np.ndarray:
        with torch.no_grad():
            return np.array(
                [float(total[name][self._at(name, flat)]) for name, flat in self._where]
            )

    def _at(self, name: str, flat: int) -> tuple[int, ...]:
        # an index tuple, not a flat view: a channels_last gradient has no flat view
        return tuple(int(i) for i in np.unravel_index(flat, self._shapes[name]))
