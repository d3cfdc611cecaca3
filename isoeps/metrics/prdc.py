"""Precision / recall (Kynkäänniemi et al. 2019) and density / coverage (Naeem et al. 2020).

A chunked torch version of the ``prdc`` package: distances are computed ``chunk_size`` rows at
a time, so memory is O(chunk_size * N) plus the features, never N x N. Three passes over the
pairs (real-real radii, fake-fake radii, fake-real) each keep only running per-point results.

Conventions (both as in the papers' definitions of the k-NN ball):

- precision and recall use k = 3 (Kynkäänniemi), density and coverage k = 5 (Naeem);
- a point's radius is the distance to its k-th nearest OTHER point of its own set;
- "inside a ball" is strict ``d < r`` by default, as the ``prdc`` package does; the original
  precision/recall code uses ``d <= r``: pass ``inclusive=True`` for that. The two differ only
  on exact ties (duplicated images).

Squared distances are compared to squared radii (``|x|^2 + |y|^2 - 2 x.y``, clamped at 0).
"""

from __future__ import annotations

import numpy as np
from pydantic import Field

from isoeps.metrics.base import MetricInputs, MetricValue
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
    import torch

    real = check_features(real, what="prdc real features")
    fake = check_features(fake, what="prdc fake features")
    if real.shape[1] != fake.shape[1]:
        raise ValueError(f"PRDC: feature dimensions differ: {real.shape[1]} vs {fake.shape[1]}")
    kmax = max(k_pr, k_dc)
    for what, count in (("real", real.shape[0]), ("fake", fake.shape[0])):
        if count < kmax + 1:
            raise ValueError(
                f"PRDC needs at least k+1 = {kmax + 1} {what} points (k={kmax}), got {count}"
            )
    torch_dtype = {"float32": torch.float32, "float64": torch.float64}[dtype]
    r = torch.as_tensor(real, dtype=torch_dtype, device=device)
    f = torch.as_tensor(fake, dtype=torch_dtype, device=device)
    with torch.inference_mode():
        real_radii = knn_radii(r, ks=(k_pr, k_dc), chunk_size=chunk_size)
        fake_radii = knn_radii(f, ks=(k_pr,), chunk_size=chunk_size)[0]
        real_pr, real_dc = real_radii[0], real_radii[1]
        inside = torch.le if inclusive else torch.lt
        r_sq, f_sq = (r * r).sum(1), (f * f).sum(1)
        precise = torch.zeros(f.shape[0], dtype=torch.bool, device=device)
        density_count = torch.zeros((), dtype=torch.float64, device=device)
        recalled = torch.zeros(r.shape[0], dtype=torch.bool, device=device)
        nearest_fake = torch.full((r.shape[0],), float("inf"), dtype=torch_dtype, device=device)
        for start in range(0, f.shape[0], chunk_size):
            stop = start + chunk_size
            dist = _sq_dist(f[start:stop], r, f_sq[start:stop], r_sq)  # (chunk, n_real)
            precise[start:stop] = inside(dist, real_pr[None, :]).any(dim=1)
            density_count += inside(dist, real_dc[None, :]).sum(dtype=torch.float64)
            recalled |= inside(dist, fake_radii[start:stop, None]).any(dim=0)
            nearest_fake = torch.minimum(nearest_fake, dist.min(dim=0).values)
        coverage = inside(nearest_fake, real_dc).double().mean()
    return {
        "precision": float(precise.double().mean()),
        "recall": float(recalled.double().mean()),
        "density": float(density_count / (k_dc * f.shape[0])),
        "coverage": float(coverage),
    }


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
        scores = prdc(
            real,
            fake,
            k_pr=o.k_pr,
            k_dc=o.k_dc,
            chunk_size=o.chunk_size,
            inclusive=o.inclusive,
            device=o.device or inputs.device,
        )
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
                },
            )
            for name, number in scores.items()
        ]
