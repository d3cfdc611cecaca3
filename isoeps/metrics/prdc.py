"""Precision / recall (Kynkäänniemi et al. 2019) and density / coverage (Naeem et al. 2020).

A chunked torch version of the ``prdc`` package: distances are computed ``chunk_size`` rows at
a time, so memory is O(chunk_size * N) plus the features, never N x N. Three passes over the
pairs (real-real radii, fake-fake radii, fake-real) keep per-sample results
(:class:`PRDCParts`): the four values are sums over them, and so are the values of a resample
of the fake set, whose confidence interval then costs no new distance.

Conventions (both as in the papers' definitions of the k-NN ball):

- precision and recall use k = 3 (Kynkäänniemi), density and coverage k = 5 (Naeem);
- a point's radius is the distance to its k-th nearest OTHER point of its own set;
- "inside a ball" is strict ``d < r`` by default, as the ``prdc`` package does; the original
  precision/recall code uses ``d <= r``: pass ``inclusive=True`` for that. The two differ only
  on exact ties (duplicated images).

Squared distances are compared to squared radii (``|x|^2 + |y|^2 - 2 x.y``, clamped at 0).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field

from isoeps.metrics.base import MetricInputs, MetricValue
from isoeps.metrics.bootstrap import (
    Interval,
    ci_seed,
    optional_half_samples,
    resampled_interval,
)
from isoeps.metrics.common import FeatureMetric, FeatureOptions, value
from isoeps.metrics.features import check_features


def _sq_dist(a, b, a_sq, b_sq):
    return (a_sq[:, None] + b_sq[None, :] - 2 * (a @ b.T)).clamp_min_(0)


def knn_radii(features, *, ks: tuple[int, ...], chunk_size: int):
    """Squared distance of each row to its k-th nearest other row, for each k in ``ks``.

    Args:
        features: ``(N, D)`` tensor.
        ks: the neighbour ranks; each < N.
        chunk_size: rows per distance block.

    Returns:
        Tensor ``(len(ks), N)`` of squared radii.
    """
    import torch

    kmax = max(ks)
    squared = (features * features).sum(1)
    radii = torch.empty((len(ks), features.shape[0]), dtype=features.dtype, device=features.device)
    for start in range(0, features.shape[0], chunk_size):
        block = features[start : start + chunk_size]
        dist = _sq_dist(block, features, squared[start : start + chunk_size], squared)
        # The row itself is at distance ~0 and sorts first; the k-th other point is at index k.
        nearest = dist.topk(kmax + 1, dim=1, largest=False).values
        for i, k in enumerate(ks):
            radii[i, start : start + chunk_size] = nearest[:, k]
    return radii


#: Per real point, at most this many fake points are kept among those inside its ball (coverage)
#: and those whose ball holds it (recall): a half-sample leaves out all of 64 given points with
#: probability below 2^-64, so the resampled coverage and recall are exact but for that chance,
#: and memory stays O(64 N) however spread the fake balls are.
MAX_PAIRS_PER_REAL = 64


@dataclass(frozen=True)
class PRDCParts:
    """Per-sample results that precision, recall, density and coverage are sums over.

    ``precise[j]``: fake ``j`` is inside some real ``k_pr`` ball; ``density_counts[j]``: how many
    real ``k_dc`` balls hold it; ``covering`` (n_real, n_fake): fake ``j`` inside real ``i``'s
    ``k_dc`` ball; ``recalling`` (n_real, n_fake): real ``i`` inside fake ``j``'s ``k_pr`` ball
    (both sparse 0/1, at most :data:`MAX_PAIRS_PER_REAL` per row). Every radius is the full
    set's, so a resample of the fake set reweights these and recomputes no distance.
    """

    precise: np.ndarray
    density_counts: np.ndarray
    covering: Any
    recalling: Any
    k_dc: int


def _capped_pairs(mask, kept, pairs: list) -> None:
    """Append the (real, fake) pairs of ``mask`` (fake chunk rows, real columns) while each
    real column has fewer than MAX_PAIRS_PER_REAL; ``kept`` counts them per column."""
    import torch

    rank = mask.cumsum(0, dtype=torch.int32) + kept[None, :]
    take = mask & (rank <= MAX_PAIRS_PER_REAL)
    kept += take.sum(0, dtype=torch.int32)
    fake, real = take.nonzero(as_tuple=True)
    pairs.append((real.cpu().numpy(), fake.cpu().numpy()))


def _sparse(pairs: list, *, chunks: list[int], shape: tuple[int, int]):
    from scipy.sparse import csr_matrix

    real = np.concatenate([r for r, _ in pairs])
    fake = np.concatenate([f + start for (_, f), start in zip(pairs, chunks)])
    return csr_matrix((np.ones(len(real), dtype=np.float32), (real, fake)), shape=shape)


def _checked(real: np.ndarray, fake: np.ndarray, *, kmax: int) -> tuple[np.ndarray, np.ndarray]:
    """The checked feature sets; raise unless both have the same dimension and > kmax rows."""
    real = check_features(real, what="prdc real features")
    fake = check_features(fake, what="prdc fake features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"PRDC: feature dimensions differ: {real.shape[1]} vs {fake.shape[1]}")
    for what, count in (("real", real.shape[0]), ("fake", fake.shape[0])):
        if count < kmax + 1:
            raise ValueError(
                f"PRDC needs at least k+1 = {kmax + 1} {what} points (k={kmax}), got {count}"
            )
    return real, fake


def prdc_parts(
    real: np.ndarray,
    fake: np.ndarray,
    *,
    k_pr: int = 3,
    k_dc: int = 5,
    chunk_size: int = 1024,
    inclusive: bool = False,
    device: str = "cpu",
    dtype: str = "float32",
) -> PRDCParts:
    """The per-sample parts of :func:`prdc`, from which the value and its resamples are sums.

    Args:
        real: ``(N, D)`` reference features.
        fake: ``(M, D)`` sample features.
        k_pr: k of precision and recall.
        k_dc: k of density and coverage.
        chunk_size: rows per distance block.
        inclusive: count a point on a ball's boundary as inside.
        device: where the distances are computed.
        dtype: ``float32`` or ``float64``, of the distance computation.

    Returns:
        The parts.

    Raises:
        ValueError: the dimensions differ, a set has at most ``max(k_pr, k_dc)`` points, or
            the features are invalid.
    """
    import torch

    real, fake = _checked(real, fake, kmax=max(k_pr, k_dc))
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    r = torch.as_tensor(real, dtype=torch_dtype, device=device)
    f = torch.as_tensor(fake, dtype=torch_dtype, device=device)
    with torch.inference_mode():
        real_radii = knn_radii(r, ks=(k_pr, k_dc), chunk_size=chunk_size)
        fake_radii = knn_radii(f, ks=(k_pr,), chunk_size=chunk_size)[0]
        real_pr, real_dc = real_radii[0], real_radii[1]
        inside = torch.le if inclusive else torch.lt
        r_sq, f_sq = (r * r).sum(1), (f * f).sum(1)
        precise, counts, covering, recalling = [], [], [], []
        kept_cover = torch.zeros(r.shape[0], dtype=torch.int32, device=device)
        kept_recall = torch.zeros_like(kept_cover)
        starts = list(range(0, f.shape[0], chunk_size))
        for start in starts:
            stop = start + chunk_size
            dist = _sq_dist(f[start:stop], r, f_sq[start:stop], r_sq)  # (chunk, n_real)
            precise.append(inside(dist, real_pr[None, :]).any(dim=1).cpu().numpy())
            in_dc = inside(dist, real_dc[None, :])
            counts.append(in_dc.sum(dim=1).cpu().numpy())
            _capped_pairs(in_dc, kept_cover, covering)
            _capped_pairs(inside(dist, fake_radii[start:stop, None]), kept_recall, recalling)
    shape = (real.shape[0], fake.shape[0])
    return PRDCParts(
        precise=np.concatenate(precise),
        density_counts=np.concatenate(counts),
        covering=_sparse(covering, chunks=starts, shape=shape),
        recalling=_sparse(recalling, chunks=starts, shape=shape),
        k_dc=k_dc,
    )


def prdc_scores(parts: PRDCParts, *, counts: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, density and coverage of resamples of the fake set.

    Args:
        parts: from :func:`prdc_parts`.
        counts: ``(B, n_fake)`` draws of each sample per resample; all ones is the full set.

    Returns:
        ``precision``, ``recall``, ``density``, ``coverage``: float64 ``(B,)`` each.
    """
    counts = np.asarray(counts, dtype=np.float64)
    n = counts.sum(axis=1)
    present = (counts > 0).T.astype(np.float32)  # (n_fake, B)
    return {
        "precision": counts @ parts.precise / n,
        "recall": (np.asarray(parts.recalling @ present) > 0).mean(axis=0),
        "density": counts @ parts.density_counts / (parts.k_dc * n),
        "coverage": (np.asarray(parts.covering @ present) > 0).mean(axis=0),
    }


def prdc(
    real: np.ndarray,
    fake: np.ndarray,
    *,
    k_pr: int = 3,
    k_dc: int = 5,
    chunk_size: int = 1024,
    inclusive: bool = False,
    device: str = "cpu",
    dtype: str = "float32",
) -> dict[str, float]:
    """Precision, recall (k=``k_pr``), density and coverage (k=``k_dc``) of ``fake`` vs ``real``.

    Naeem et al. (2020), with k-NN balls around the real points (and the fake points for
    recall).

    Args:
        real: ``(N, D)`` reference features.
        fake: ``(M, D)`` sample features.
        k_pr: k of precision and recall.
        k_dc: k of density and coverage.
        chunk_size: rows per distance block.
        inclusive: count a point on a ball's boundary as inside.
        device: where the distances are computed.
        dtype: ``float32`` or ``float64``, of the distance computation.

    Returns:
        ``precision``, ``recall``, ``density`` and ``coverage``.

    Raises:
        ValueError: the dimensions differ, a set has at most ``max(k_pr, k_dc)`` points, or
            the features are invalid.
    """
    parts = prdc_parts(
        real,
        fake,
        k_pr=k_pr,
        k_dc=k_dc,
        chunk_size=chunk_size,
        inclusive=inclusive,
        device=device,
        dtype=dtype,
    )
    return full_scores(parts)


def full_scores(parts: PRDCParts) -> dict[str, float]:
    """Precision, recall, density and coverage of the full sets.

    Args:
        parts: from :func:`prdc_parts`.

    Returns:
        As :func:`prdc`.
    """
    scores = prdc_scores(parts, counts=np.ones((1, len(parts.precise))))
    return {name: float(values[0]) for name, values in scores.items()}


#: ``details["ci_note"]`` of recall, which has no interval.
RECALL_NO_CI = (
    "no interval: recall's k-NN balls are the samples' own, and a half-sample with the full "
    "set's radii leaves the radii's variation out (in Gaussian tests that interval was half "
    "as wide as recall's true spread); recomputing them per half-sample is not done here"
)


def prdc_intervals(
    parts: PRDCParts, *, scores: dict[str, float], resamples: int, seed: int
) -> dict[str, Interval | None]:
    """Half-sampling intervals of precision, density and coverage over the samples.

    The real set and every k-NN radius stay the full sets' (a half-sample changes which
    samples count, never a ball). That is exact for precision, density and coverage, whose
    balls are the fixed real set's; recall's balls are the samples' own, so recall gets none
    (:data:`RECALL_NO_CI`).

    Args:
        parts: from :func:`prdc_parts`.
        scores: the full-sample values (:func:`prdc`'s keys).
        resamples: how many half-samples; 0 for none.
        seed: the metric inputs' seed; the half-samples' seed is derived from it.

    Returns:
        Per value name, its interval or None.
    """
    n = len(parts.precise)
    out: dict[str, Interval | None] = dict.fromkeys(scores)
    seed = ci_seed(seed=seed, purpose="prdc")
    counts = optional_half_samples(n=n, resamples=resamples, seed=seed)
    if counts is None:
        return out
    replicates = prdc_scores(parts, counts=counts)
    for name in ("precision", "density", "coverage"):
        if name in scores:
            out[name] = resampled_interval(
                replicates=replicates[name],
                value=scores[name],
                seed=seed,
                bounds=(0.0, None if name == "density" else 1.0),
            )
    return out


class PRDCMetric(FeatureMetric):
    """Precision, recall, density and coverage of the samples against the reference split."""

    name = "pr"

    class Options(FeatureOptions):
        k_pr: int = Field(default=3, ge=1)
        k_dc: int = Field(default=5, ge=1)
        chunk_size: int = Field(default=1024, ge=1)
        inclusive: bool = False

    options: Options

    def evaluate(self, inputs: MetricInputs) -> list[MetricValue]:
        backbone, fake, real = self.features(inputs)
        o = self.options
        parts = prdc_parts(
            real,
            fake,
            k_pr=o.k_pr,
            k_dc=o.k_dc,
            chunk_size=o.chunk_size,
            inclusive=o.inclusive,
            device=o.device or inputs.device,
        )
        scores = full_scores(parts)
        intervals = prdc_intervals(parts, scores=scores, resamples=o.ci_resamples, seed=inputs.seed)
        rule = "d <= r" if o.inclusive else "d < r (prdc package)"
        return [
            value(
                name,
                number,
                higher_is_better=True,
                n=len(fake),
                backbone=backbone,
                details={
                    "k": o.k_pr if name in ("precision", "recall") else o.k_dc,
                    "ball": rule,
                    "n_real": len(real),
                    **({"ci_note": RECALL_NO_CI} if name == "recall" else {}),
                },
                ci=intervals[name],
            )
            for name, number in scores.items()
        ]
