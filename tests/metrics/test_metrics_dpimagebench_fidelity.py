"""DPImageBench's fidelity protocol: the offline pytorch-fid network, FID, P/R, IS, pixels.

References read for the transcriptions below: 2019ChenGong/DPImageBench at 565f8d7
(``evaluation/evaluator.py``) and marcojira/fld at ffbbf2041115814fd1074f0117bcb96c5af840b7
(``fld/metrics/PrecisionRecall.py``, ``fld/metrics/FID.py``,
``fld/features/InceptionFeatureExtractor.py``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from metrics_fixtures import textured_images

from isoeps.datasets.base import ImageSplit
from isoeps.errors import ConfigError, MissingWeightsError
from isoeps.metrics import features as feature_cache
from isoeps.metrics.backbones import load_backbone
from isoeps.metrics.base import MetricInputs
from isoeps.metrics.dpimagebench import fidelity, inception
from isoeps.metrics.dpimagebench.preprocess import (
    PROTOCOL,
    to_sensitive_channels,
    truncate_unit,
)

WHEEL_SHA256_PREFIX = "7ff4a85c"


def _gray(n: int, *, size: int = 28, seed: int = 0) -> np.ndarray:
    """Gray (three equal channels) textured images, as Fashion-MNIST is stored."""
    colour = textured_images(n, size=size, seed=seed)
    return np.repeat(colour.mean(axis=1, keepdims=True).astype(np.uint8), 3, axis=1)


def _split(images: np.ndarray, *, split: str = "private", padding: int = 0) -> ImageSplit:
    n = images.shape[0]
    return ImageSplit(
        dataset="test-dpib",
        split=split,
        ids=[f"{split}-{i}" for i in range(n)],
        images=images,
        captions=[[""] for _ in range(n)],
        info={"padding": padding} if padding else {},
    )


@pytest.fixture(scope="module")
def backbone() -> inception.PytorchFidInceptionBackbone:
    return load_backbone(inception.BACKBONE_NAME)


# --- the network ---------------------------------------------------------------------------


def test_port_matches_torchscript_network(backbone) -> None:
    """Same inputs, pool3 features of pytorch-fid's network vs the TorchScript file's."""
    layers = torch.jit.load(str(backbone.path)).eval().net.layers
    port = inception.pytorch_fid_inception(backbone.path, resize_input=False)
    x = torch.rand(2, 3, 299, 299, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        ours = port(x)[0].reshape(-1, 2048).numpy()
        # DESIGN §6: the TorchScript network's features-only path on inputs in [-1, 1]
        theirs = layers(2 * x - 1).reshape(-1, 2048).numpy()
        # The backbone's own path on 28x28 uint8: ToTensor, bilinear 299 inside, 2x - 1.
        images = _gray(3)
        unit = torch.from_numpy(images).float() / 255
        resized = torch.nn.functional.interpolate(
            unit, size=(299, 299), mode="bilinear", align_corners=False
        )
        expected = layers(2 * resized - 1).reshape(-1, 2048).numpy()
    assert backbone.weights_sha256.startswith(WHEEL_SHA256_PREFIX)
    assert theirs.std() > 0.1
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 * np.abs(theirs).max())
    got = backbone.features(images, batch_size=2)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_bad_torchscript_file_is_named(tmp_path) -> None:
    module = torch.jit.script(torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3)))
    path = tmp_path / "not-inception.pt"
    module.save(str(path))
    with pytest.raises(MissingWeightsError, match="not-inception.pt"):
        inception.pytorch_fid_inception(path)


# --- FID -------------------------------------------------------------------------------------


def _cleanfid_legacy_pytorch_features(network, images: np.ndarray) -> np.ndarray:
    """clean-fid's ``legacy_pytorch`` mode with our network: its resizer
    (``make_resizer("PyTorch", False, "bilinear", (299, 299))``, on HWC floats in [0, 255])
    and its ``feature_extractor(name="pytorch_inception")`` call, ``model(x / 255)[0]``, on
    pytorch-fid's InceptionV3 built without its own resize."""
    from cleanfid.resize import make_resizer

    resize = make_resizer("PyTorch", False, "bilinear", (299, 299))
    batch = np.stack([resize(image.transpose(1, 2, 0)) for image in images])
    batch = torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2)))
    with torch.inference_mode():
        return network(batch / 255)[0].squeeze(-1).squeeze(-1).numpy()


@pytest.mark.slow  # ~80 s on 1 CPU thread: scipy's sqrtm of a 2048 x 2048 matrix is 30 s of it
def test_fid_agrees_with_cleanfid_legacy_pytorch_reference(backbone) -> None:
    """Acceptance (issue 15): the protocol's FID vs a reference built from clean-fid.

    The reference: clean-fid's ``legacy_pytorch`` resize fed to the same pytorch-fid network
    (offline weights, resize inside turned off), clean-fid's own statistics
    (``np.mean``, ``np.cov``) and its ``frechet_distance`` (scipy sqrtm). n = 32 per set,
    below the feature dimension, so both sides compute the same low-rank FID.
    """
    from cleanfid.fid import frechet_distance

    train, fake = _gray(32, seed=0), _gray(32, seed=1)
    inputs = MetricInputs(
        fake=fake,
        fake_captions=[],
        reference=_split(train, split="reference"),
        private=_split(train),
    )
    with pytest.warns(RuntimeWarning, match="n=32"):
        (row,) = fidelity.DPImageBenchFID().evaluate(inputs)
    network = inception.pytorch_fid_inception(backbone.path, resize_input=False)
    ref_fake = _cleanfid_legacy_pytorch_features(network, fake)
    ref_train = _cleanfid_legacy_pytorch_features(network, train)
    expected = frechet_distance(
        ref_fake.mean(axis=0),
        np.cov(ref_fake, rowvar=False),
        ref_train.mean(axis=0),
        np.cov(ref_train, rowvar=False),
    )
    assert expected > 1.0  # two different sets: far from the relative-error blow-up at 0
    assert row.value == pytest.approx(expected, rel=1e-3)
    assert row.name == "dpib_fid" and row.n == 32 and row.higher_is_better is False
    assert row.backbone == "pytorch-fid-inception"
    assert row.backbone_sha256.startswith(WHEEL_SHA256_PREFIX)
    assert row.details["protocol"] == PROTOCOL and row.reads_private is True
    assert row.resize_mode == inception.RESIZE_MODE
    assert row.details["resolution"] == {"samples": {}, "reference": {}}
    assert row.ci_low <= row.value <= row.ci_high and row.details["ci"]["resampled"] == "fake"


def test_fid_math_matches_pytorch_fid_where_sqrtm_is_finite() -> None:
    """fld's FID.py is pytorch-fid's calculate_frechet_distance on np.mean / np.cov."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    rng = np.random.default_rng(0)
    mix = rng.normal(size=(16, 16))
    train = rng.normal(size=(300, 16)) @ mix
    fake = (rng.normal(size=(250, 16)) + 0.3) @ (mix + 0.2 * rng.normal(size=(16, 16)))
    expected = calculate_frechet_distance(
        fake.mean(0), np.cov(fake, rowvar=False), train.mean(0), np.cov(train, rowvar=False)
    )
    got, details = fidelity.dpimagebench_fid(fake.astype(np.float32), train.astype(np.float32))
    assert got == pytest.approx(expected, rel=1e-5)
    assert details["n_fake"] == 250 and details["n_real"] == 300


def test_fake_subset_keeps_every_class_when_random() -> None:
    classes = np.repeat(np.arange(10), 6)  # written class by class, as DPImageBench's gens do
    features = np.stack([classes, np.arange(60)], axis=1).astype(np.float32)
    first, record = fidelity.select_fake(features, max_fake=50, subset="first", seed=0)
    assert np.array_equal(first[:, 1], np.arange(50)) and set(first[:, 0]) != set(range(10))
    drawn, record = fidelity.select_fake(features, max_fake=50, subset="random", seed=3)
    again, _ = fidelity.select_fake(features, max_fake=50, subset="random", seed=3)
    assert np.array_equal(drawn, again) and len(np.unique(drawn[:, 1])) == 50
    assert set(drawn[:, 0]) == set(range(10))
    assert record == {"n_fake_total": 60, "fake_subset": "random", "subset_seed": 3}
    kept, record = fidelity.select_fake(features, max_fake=60, subset="random", seed=0)
    assert kept is features and record == {"n_fake_total": 60}


# --- precision / recall ----------------------------------------------------------------------


def _fld_precision_recall(train, gen, *, num_neighbors: int, batch_size: int):
    """fld/metrics/PrecisionRecall.py at ffbbf20, transcribed (BATCH_SIZE as an argument,
    on CPU): radii are the num_neighbors-th smallest torch.cdist distance (self included),
    and a point is in the manifold if strictly closer than some point's radius."""

    def get_nn_dists(feat):
        dists = torch.zeros(feat.shape[0])
        for i in range(math.ceil(feat.shape[0] / batch_size)):
            start, end = i * batch_size, (i + 1) * batch_size
            curr = torch.cdist(feat[start:end], feat).topk(num_neighbors, dim=1, largest=False)
            dists[start:end] = curr.values[:, -1]
        return dists

    def pct_in_manifold(evaluated, manifold):
        total = 0
        nn_dists = get_nn_dists(manifold)
        for i in range(math.ceil(evaluated.shape[0] / batch_size)):
            start, end = i * batch_size, (i + 1) * batch_size
            pairwise = torch.cdist(evaluated[start:end], manifold)
            comparison = nn_dists.unsqueeze(0).repeat(pairwise.shape[0], 1)
            total += ((pairwise < comparison).sum(dim=1) > 0).sum()
        return (total / evaluated.shape[0]).item()

    train, gen = torch.from_numpy(train), torch.from_numpy(gen)
    return {"precision": pct_in_manifold(gen, train), "recall": pct_in_manifold(train, gen)}


def _pr_features(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(5, 12))
    train = centres[rng.integers(0, 5, 150)] + rng.normal(size=(150, 12))
    gen = centres[rng.integers(0, 3, 120)] + 1.4 * rng.normal(size=(120, 12))
    gen[:6] = train[:6]  # memorised copies: distance 0 to a train point
    return train.astype(np.float32), gen.astype(np.float32)


@pytest.mark.parametrize("num_neighbors", [2, 4, 7])
def test_precision_recall_match_fld(num_neighbors: int) -> None:
    train, gen = _pr_features()
    expected = _fld_precision_recall(train, gen, num_neighbors=num_neighbors, batch_size=10)
    got = fidelity.dpimagebench_precision_recall(
        train, gen, num_neighbors=num_neighbors, chunk_size=7
    )
    assert 0.05 < expected["precision"] < 0.95 and 0.05 < expected["recall"] < 0.95
    # one point of difference would be >= 1/150; this is agreement on every point
    assert got["precision"] == pytest.approx(expected["precision"], abs=1e-6)
    assert got["recall"] == pytest.approx(expected["recall"], abs=1e-6)


def test_precision_recall_match_prdc_package_at_k3() -> None:
    """prdc's precision / recall (nearest_k=3, strict <) are fld's at num_neighbors=4."""
    from prdc import compute_prdc

    train, gen = _pr_features(seed=1)
    expected = compute_prdc(real_features=train, fake_features=gen, nearest_k=3)
    got = fidelity.dpimagebench_precision_recall(train, gen)
    assert got["precision"] == pytest.approx(expected["precision"], abs=1e-9)
    assert got["recall"] == pytest.approx(expected["recall"], abs=1e-9)


def test_pr_metric_provenance_crop_and_cached_train_features(
    backbone, tmp_path, monkeypatch
) -> None:
    """Padded 32x32 splits are cropped to 28; train features are cached by the protocol."""
    monkeypatch.setenv("ISOEPS_CACHE_DIR", str(tmp_path / "cache"))
    pad = ((0, 0), (0, 0), (2, 2), (2, 2))
    private = _split(np.pad(_gray(12, seed=2), pad), padding=2)
    fake = np.pad(_gray(10, seed=3), pad)
    inputs = MetricInputs(fake=fake, fake_captions=[], reference=private, private=private)
    metric = fidelity.DPImageBenchPR(batch_size=4)
    rows = {row.name: row for row in metric.evaluate(inputs)}
    assert set(rows) == {"dpib_precision", "dpib_recall"}
    crop = {"to_sensitive_resolution": {"from": 32, "to": 28, "mode": "crop-2"}}
    for row in rows.values():
        assert row.n == 10 and row.backbone == inception.BACKBONE_NAME
        assert row.details["protocol"] == PROTOCOL and row.reads_private is True
        assert row.details["k"] == 3 and row.details["n_real"] == 12
        assert row.details["resolution"] == {"samples": crop, "reference": crop}
    precision, recall = rows["dpib_precision"], rows["dpib_recall"]
    assert precision.ci_low <= precision.value <= precision.ci_high
    assert recall.ci_low is None and recall.details["ci_note"].startswith("no interval")
    prepared, _ = fidelity.protocol_split(private)
    assert prepared.resolution == 28 and prepared.split == f"private+{PROTOCOL}"
    key = feature_cache.reference_key(backbone, prepared)
    assert key != feature_cache.reference_key(backbone, private)
    assert (tmp_path / "cache" / "reference-features" / key / "features.npy").is_file()
    # Again, with the in-process memo gone: only the samples go through the network.
    feature_cache._memo.clear()
    calls = []
    original = backbone.features
    monkeypatch.setattr(
        backbone,
        "features",
        lambda images, **kw: calls.append(len(images)) or original(images, **kw),
    )
    again = {row.name: row.value for row in metric.evaluate(inputs)}
    assert calls == [10] and again == {name: row.value for name, row in rows.items()}


def test_fid_and_pr_need_the_private_split() -> None:
    inputs = MetricInputs(fake=_gray(4), fake_captions=[], reference=_split(_gray(4)))
    with pytest.raises(ValueError, match="dpimagebench-fid: needs the sensitive train split"):
        fidelity.DPImageBenchFID().evaluate(inputs)
    assert fidelity.DPImageBenchFID.needs == frozenset({"private"})
    assert fidelity.DPImageBenchPR.needs == frozenset({"private"})
    assert fidelity.DPImageBenchIS.needs == frozenset()
    with pytest.raises(ConfigError, match=r"metrics\.dpimagebench-fid\.batch_sise: unknown field"):
        fidelity.DPImageBenchFID(batch_sise=8)
    with pytest.raises(ConfigError, match="dpimagebench-pr.num_neighbors"):
        fidelity.DPImageBenchPR(num_neighbors=1)


# --- Inception Score -------------------------------------------------------------------------


def _dpimagebench_is(logits: np.ndarray, splits: int) -> float:
    """evaluator.py's softmax (np.exp / sum) and compute_inception_score_from_logits."""
    from scipy.stats import entropy

    probs = np.exp(logits) / np.sum(np.exp(logits), 1, keepdims=True)
    scores = []
    for i in range(splits):
        part = probs[(i * probs.shape[0] // splits) : ((i + 1) * probs.shape[0] // splits), :]
        py = np.mean(part, axis=0)
        kl = np.mean([entropy(part[j, :], py) for j in range(part.shape[0])])
        scores.append(np.exp(kl))
    return float(np.mean(scores))


@pytest.mark.parametrize("splits", [1, 3])
def test_inception_score_matches_dpimagebench_formula(splits: int) -> None:
    logits = np.random.default_rng(0).normal(scale=3.0, size=(40, inception.FC_CLASSES))
    mean, _ = fidelity.inception_score(logits, splits=splits)
    assert mean > 1.5
    assert mean == pytest.approx(_dpimagebench_is(logits, splits), rel=1e-10)


def _random_fc_file(path) -> torch.nn.Linear:
    torch.manual_seed(0)
    fc = torch.nn.Linear(inception.FEATURE_DIM, inception.FC_CLASSES)
    torch.save({"fc.weight": fc.weight.data, "fc.bias": fc.bias.data, "other": torch.ones(1)}, path)
    return fc


def test_is_metric_on_a_random_fc_layer(backbone, tmp_path, monkeypatch) -> None:
    fc = _random_fc_file(tmp_path / "fc.pth")
    fake = _gray(8, seed=4)
    inputs = MetricInputs(
        fake=fake, fake_captions=[], reference=_split(_gray(4), split="reference")
    )
    monkeypatch.setenv(inception.FC_WEIGHTS_ENV, str(tmp_path / "fc.pth"))
    (row,) = fidelity.DPImageBenchIS().evaluate(inputs)
    with torch.inference_mode():
        logits = fc(torch.from_numpy(backbone.features(fake))).numpy()
    assert row.name == "dpib_is" and row.n == 8 and row.higher_is_better
    assert row.value == pytest.approx(_dpimagebench_is(logits.astype(np.float64), 1), rel=1e-5)
    assert row.reads_private is False and row.details["protocol"] == PROTOCOL
    assert row.details["fc_weights_sha256"] and row.std is None


def test_is_without_fc_weights_says_what_to_supply(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv(inception.FC_WEIGHTS_ENV, raising=False)
    with pytest.raises(MissingWeightsError, match=rf"{inception.FC_WEIGHTS_ENV}.*pt_inception-"):
        fidelity.DPImageBenchIS()
    with pytest.raises(MissingWeightsError, match="nope.pth.*inception_fc_weights"):
        fidelity.DPImageBenchIS(inception_fc_weights=str(tmp_path / "nope.pth"))
    torch.save({"conv.weight": torch.ones(1)}, tmp_path / "no-fc.pth")
    with pytest.raises(MissingWeightsError, match="no-fc.pth: no fc.weight"):
        inception.load_fc_layer(tmp_path / "no-fc.pth")


# --- pixels ----------------------------------------------------------------------------------


def test_truncation_is_topilimage() -> None:
    from torchvision.transforms.functional import pil_to_tensor, to_pil_image

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, size=(3, 9, 9)).astype(np.float32)
    x[0, 0, :4] = [0.999, 1.0, 0.0, 254.6 / 255]
    expected = pil_to_tensor(to_pil_image(torch.from_numpy(x))).numpy()
    assert np.array_equal(truncate_unit(x), expected)
    assert truncate_unit(x)[0, 0, 0] == 254  # rounding would give 255
    # uint8 pixels survive ToTensor then ToPILImage exactly: isoeps samples lose nothing
    levels = np.arange(256, dtype=np.uint8).reshape(1, 16, 16)
    tensor = torch.from_numpy(levels).float().div(255)
    assert np.array_equal(pil_to_tensor(to_pil_image(tensor)).numpy(), levels)


def test_float_npz_is_truncated_under_the_protocol(tmp_path) -> None:
    from isoeps.metrics.sources import load_source

    x = np.full((2, 1, 4, 4), 0.999, dtype=np.float32)
    x[1] = 0.5
    np.savez(tmp_path / "gen.npz", x=x, y=np.zeros(2, dtype=np.int64))
    truncated = load_source(str(tmp_path / "gen.npz"), role="fake", quantise="truncate")
    rounded = load_source(str(tmp_path / "gen.npz"), role="fake")
    assert truncated.images.shape == (2, 3, 4, 4)
    assert np.array_equal(truncated.images, np.repeat(truncate_unit(x), 3, axis=1))
    assert truncated.images[0].max() == 254 and rounded.images[0].max() == 255
    assert truncated.info["quantise"] == "truncate"


def test_colour_samples_of_gray_data_are_converted_as_the_evaluator_does() -> None:
    from torchvision.transforms.functional import pil_to_tensor, to_pil_image

    colour = textured_images(3, size=8, seed=5)
    got, record = to_sensitive_channels(colour, gray=True)
    x = colour.astype(np.float32) / np.float32(255)
    # evaluator.py: 0.299 * x[:, 2:] + 0.587 * x[:, 1:2] + 0.114 * x[:, :1], then fld's
    # ToPILImage of the image replicated to three channels
    luma = 0.299 * x[:, 2:, ...] + 0.587 * x[:, 1:2, ...] + 0.114 * x[:, :1, ...]
    replicated = torch.from_numpy(luma).repeat(1, 3, 1, 1)
    expected = np.stack([pil_to_tensor(to_pil_image(image)).numpy() for image in replicated])
    assert np.array_equal(got, expected) and record["to_sensitive_channels"]["to"] == 1
    gray = _gray(2, size=8)
    assert to_sensitive_channels(gray, gray=True)[0] is gray
    assert to_sensitive_channels(colour, gray=False) == (colour, {})


def test_fld_and_imagereward_are_named_not_available() -> None:
    from isoeps import registry

    for name in ("fld", "ir", "imagereward"):
        assert "not available offline" in str(fidelity.not_available(name))
    known = registry.names("isoeps.metrics")
    assert not {"dpimagebench-fld", "dpimagebench-ir", "dpimagebench-imagereward"} & set(known)


def test_a_cpu_sized_reference_says_so_in_every_value(backbone, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("ISOEPS_CACHE_DIR", str(tmp_path / "cache"))
    private = _split(_gray(12, seed=2))
    inputs = MetricInputs(
        fake=_gray(10, seed=3), fake_captions=[], reference=private, private=private
    )
    full = fidelity.DPImageBenchPR(batch_size=4).evaluate(inputs)
    small = fidelity.DPImageBenchPR(batch_size=4, max_reference=6).evaluate(inputs)
    assert all(row.details["protocol_exact"] for row in full)
    for row in small:
        assert row.details["protocol_exact"] is False and row.details["n_real"] == 6
        assert "6 of the 12 train records" in row.details["deviations"][0]
