"""DPImageBench's utility protocol: classifiers, EMA, schedule, epoch selection, the metric."""

from __future__ import annotations

import math

import numpy as np
import pytest

from isoeps.datasets.base import ImageSplit
from isoeps.errors import ConfigError
from isoeps.metrics.base import MetricInputs
from isoeps.metrics.bootstrap import wilson_interval
from isoeps.metrics.dpimagebench import utility as dpib
from isoeps.metrics.dpimagebench.classifiers import build_classifier

torch = pytest.importorskip("torch")


def _halves(n: int, *, size: int = 28, seed: int = 0, split: str = "reference") -> ImageSplit:
    """Two easy classes, grayscale stored as three equal channels: a bright left half (0) or
    a bright right half (1), on noise."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % 2
    gray = rng.integers(0, 60, size=(n, size, size))
    for i, label in enumerate(labels):
        cols = slice(0, size // 2) if label == 0 else slice(size // 2, size)
        gray[i, :, cols] += 150
    images = np.repeat(gray[:, None].astype(np.uint8), 3, axis=1)
    return ImageSplit(
        dataset="test-halves",
        split=split,
        ids=[f"{split}-{i}" for i in range(n)],
        images=images,
        captions=[[f"class {label}"] for label in labels],
        attributes={"label": labels.astype(np.int64)},
        attribute_schema={"label": ["left", "right"]},
    )


def _inputs(*, epsilon: float | None, seed: int = 0, n_fake: int = 48) -> MetricInputs:
    fake = _halves(n_fake, seed=1, split="fake")
    return MetricInputs(
        fake=fake.images,
        fake_captions=[c[0] for c in fake.captions],
        fake_attributes={"label": fake.attributes["label"]},
        reference=_halves(40, seed=2),
        validation=_halves(40, seed=3, split="validation"),
        epsilon=epsilon,
        seed=seed,
    )


@pytest.mark.parametrize("name", ["resnet", "wrn", "resnext"])
def test_classifiers_give_ten_logits_for_28_gray_and_32_colour(name: str) -> None:
    # The "mnist" recipe's architectures, sized as DPImageBench's (ResNet-110, WRN-40-4,
    # ResNeXt-29 8x64d): their parameter counts pin the hyper-parameters.
    params = {"resnet": 1_730_426, "wrn": 8_948_922, "resnext": 34_425_546}
    for channels, size in ((1, 28), (3, 32)):
        model = build_classifier(
            name, recipe="mnist", in_channels=channels, img_size=size, num_classes=10
        ).eval()
        with torch.no_grad():
            logits = model(torch.zeros(2, channels, size, size))
        assert logits.shape == (2, 10)
        if channels == 1:
            assert sum(p.numel() for p in model.parameters()) == params[name]


def test_ema_matches_hand_computation_and_averaged_model() -> None:
    from torch.optim.swa_utils import AveragedModel

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2))
    start = [p.detach().clone() for p in model.parameters()]
    ema = dpib.ExponentialMovingAverage(model.parameters(), 0.9999)

    def decay_fn(averaged, current, num_averaged):
        decay = min(0.9999, (1 + num_averaged) / (10 + num_averaged))
        return decay * averaged + (1 - decay) * current

    reference = AveragedModel(model, avg_fn=decay_fn)
    reference.update_parameters(model)  # the first call copies: the EMA's starting point
    hand = [p.clone() for p in start]
    for step in range(1, 6):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))
        ema.update(model.parameters())
        reference.update_parameters(model)
        decay = min(0.9999, (1 + step) / (10 + step))
        hand = [decay * h + (1 - decay) * p for h, p in zip(hand, model.parameters())]
    for shadow, by_hand, averaged in zip(ema.shadow_params, hand, reference.module.parameters()):
        torch.testing.assert_close(shadow, by_hand)
        torch.testing.assert_close(shadow, averaged)
    # BatchNorm running statistics are buffers: the EMA leaves them alone.
    assert len(ema.shadow_params) == len(list(model.parameters()))
    live = [p.detach().clone() for p in model.parameters()]
    ema.store(model.parameters())
    ema.copy_to(model.parameters())
    assert torch.equal(next(model.parameters()), ema.shadow_params[0])
    ema.restore(model.parameters())
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), live))


@pytest.mark.parametrize("recipe", ["mnist", "cifar"])
def test_recipe_schedule_matches_steplr(recipe: str) -> None:
    spec = dpib.RECIPES[recipe]
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer, scheduler = dpib.make_optimizer(recipe=spec, parameters=[weight])
    if recipe == "mnist":
        assert isinstance(optimizer, torch.optim.Adam)
        assert (spec.epochs, spec.batch_size, spec.step_size) == (50, 256, 20)
    else:
        assert isinstance(optimizer, torch.optim.SGD)
        group = optimizer.param_groups[0]
        assert (group["momentum"], group["weight_decay"]) == (0.9, 5e-4)
        assert (spec.epochs, spec.batch_size, spec.step_size) == (200, 126, 60)
    other = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=spec.lr)
    expected = torch.optim.lr_scheduler.StepLR(other, step_size=spec.step_size, gamma=0.2)
    for epoch in range(spec.epochs):
        lr = optimizer.param_groups[0]["lr"]
        assert lr == pytest.approx(other.param_groups[0]["lr"])
        assert lr == pytest.approx(spec.lr * 0.2 ** (epoch // spec.step_size))
        optimizer.step()
        other.step()
        scheduler.step()
        expected.step()


def test_selection_noise_and_ties() -> None:
    val = np.array([10.0, 30.0, 30.0, 20.0])
    test = np.array([0.5, 0.6, 0.7, 0.9])
    clean = dpib.select_epoch(val_correct=val, test_accuracy=test, noise=np.zeros(4))
    # A tie goes to the later epoch (DPImageBench's ">="); best-on-test is the max.
    assert (clean["selected_epoch"], clean["selected_test_accuracy"]) == (3, 0.7)
    assert clean["noiseless_selected_epoch"] == 3
    assert (clean["best_on_test_epoch"], clean["best_on_test_accuracy"]) == (4, 0.9)
    assert dpib.selection_noise_scale(math.inf)[0] == 0.0
    assert dpib.selection_noise_scale(None) == (
        0.0,
        "public row (no ε): the validation counts are not noised",
    )
    assert dpib.selection_noise_scale(0.5)[0] == 2.0
    with pytest.raises(ValueError, match="positive"):
        dpib.selection_noise_scale(0.0)
    rng, _ = dpib.seeds_for(0, "resnet")
    noise = dpib.draw_selection_noise(rng, epochs=4, scale=1e3)
    again = dpib.draw_selection_noise(dpib.seeds_for(0, "resnet")[0], epochs=4, scale=1e3)
    assert np.array_equal(noise, again)
    noisy = dpib.select_epoch(val_correct=val, test_accuracy=test, noise=noise)
    assert noisy["selected_epoch"] == int(np.argmax(val + noise)) + 1 != 3
    assert noisy["noiseless_selected_epoch"] == 3


def test_metric_trains_selects_and_records_deviations() -> None:
    # Batches of 8: enough optimizer steps for the EMA's warm-up to leave the initial weights.
    metric = dpib.DPImageBenchUtilityMetric(epochs=3, classifiers=["resnet"], batch_size=8)
    values = {v.name: v for v in metric.evaluate(_inputs(epsilon=math.inf))}
    assert set(values) == {"dpib_acc_resnet", "dpib_acc_mean"}
    resnet = values["dpib_acc_resnet"]
    d = resnet.details
    assert d["protocol"] == "dpimagebench" and resnet.reads_private and d["reads_validation"]
    assert d["input_channels"] == 1 and d["resolution"] == 28 and d["num_classes"] == 2
    assert d["epochs_trained"] == 3 and len(d["test_accuracy"]) == 3
    # ε = inf: no noise, so the choice is the (last) best validation epoch.
    assert d["selection_noise_scale"] == 0.0
    val = np.array(d["val_accuracy"])
    assert d["selected_epoch"] == len(val) - int(np.argmax(val[::-1]))
    assert d["selected_epoch"] == d["noiseless_selected_epoch"]
    assert resnet.value == d["test_accuracy"][d["selected_epoch"] - 1]
    assert d["best_on_test_accuracy"] >= resnet.value
    assert d["best_on_test_accuracy"] == max(d["test_accuracy"])
    assert max(d["test_accuracy"]) > 0.9  # the halves are learnt: labels and scaling line up
    assert d["protocol_exact"] is False
    kinds = {deviation.split(":")[0].split(" ")[0] for deviation in d["deviations"]}
    assert {"epochs", "batch", "classifiers", "train"} <= kinds
    assert any("only 48 samples given" in deviation for deviation in d["deviations"])
    assert any(f"split: {d['n_validation']} of DPImageBench's 5000" in x for x in d["deviations"])
    assert any(f"test split: {d['n_test']} of DPImageBench's 10000" in x for x in d["deviations"])
    assert values["dpib_acc_mean"].value == resnet.value
    assert values["dpib_acc_mean"].details["deviations"] == d["deviations"]
    assert d["n_train"] == resnet.n == 48
    # The Wilson interval counts the test images, not the training samples.
    wilson = wilson_interval(proportion=resnet.value, n=d["n_test"])
    assert (resnet.ci_low, resnet.ci_high) == (wilson.low, wilson.high)
    assert d["ci"]["method"] == "wilson" and d["ci_note"].startswith("Wilson over the n_test")
    assert values["dpib_acc_mean"].ci_low == resnet.ci_low


def _fake_training(seen: dict):
    def train(name, data, *, recipe, epochs, batch_size, device, seed):
        seen.update(size=data.size, channels=data.channels, seed=seed, n=len(data.train_y))
        val = [30.0, 38.0, 31.0, 33.0][:epochs]
        test = [0.6, 0.8, 0.7, 0.9][:epochs]
        return {"val_correct": val, "test_accuracy": test, "train_loss": [0.0] * epochs}

    return train


def test_tiny_epsilon_changes_the_choice_deterministically(monkeypatch) -> None:
    seen: dict = {}
    monkeypatch.setattr(dpib, "train_tracked", _fake_training(seen))
    metric = dpib.DPImageBenchUtilityMetric(epochs=4, classifiers=["wrn"], max_train=20)
    exact = metric.evaluate(_inputs(epsilon=math.inf))[0].details
    assert exact["selected_epoch"] == 2 and exact["selected_test_accuracy"] == 0.8
    noisy = metric.evaluate(_inputs(epsilon=1e-3, seed=4))[0].details
    assert noisy["selection_noise_scale"] == pytest.approx(1e3)
    assert noisy["selected_epoch"] != 2 and noisy["noiseless_selected_epoch"] == 2
    assert noisy == metric.evaluate(_inputs(epsilon=1e-3, seed=4))[0].details
    assert any("max_train 20" in deviation for deviation in noisy["deviations"])
    assert seen["n"] == 20
    public = metric.evaluate(_inputs(epsilon=None))[0].details
    assert public["selection_noise_scale"] == 0.0 and "public row" in public["selection_noise"]
    assert public["selected_epoch"] == 2


def test_padded_source_is_cropped_and_colour_samples_weighted(monkeypatch) -> None:
    seen: dict = {}
    monkeypatch.setattr(dpib, "train_tracked", _fake_training(seen))
    inputs = _inputs(epsilon=1.0)
    padded = {}
    for what in ("reference", "validation"):
        split = getattr(inputs, what)
        split.images = np.pad(split.images, ((0, 0), (0, 0), (2, 2), (2, 2)))
        split.info = {"padding": 2, "channels": 1}
        padded[what] = split
    colour = np.pad(inputs.fake, ((0, 0), (0, 0), (2, 2), (2, 2))).copy()
    colour[:, 0] //= 2  # unequal channels: weighted to gray as DPImageBench does
    inputs.fake = colour
    metric = dpib.DPImageBenchUtilityMetric(epochs=2, classifiers=["resnet"])
    details = metric.evaluate(inputs)[0].details
    assert seen["size"] == 28 and seen["channels"] == 1
    assert details["preprocessing"]["test"]["to_sensitive_resolution"]["mode"] == "crop-2"
    assert "weighted" in details["preprocessing"]["samples_channels"]
    gray, note = dpib.to_channels(colour[:1], grayscale=True)
    unit = colour[:1].astype(np.float32) / 255
    expected = 0.299 * unit[:, 2:] + 0.587 * unit[:, 1:2] + 0.114 * unit[:, :1]
    np.testing.assert_allclose(gray, expected, rtol=1e-6)
    assert note.startswith("colour samples weighted")
    equal = inputs.reference.images[:2]
    first, how = dpib.to_channels(equal, grayscale=True)
    assert first.dtype == np.uint8 and np.array_equal(first[:, 0], equal[:, 0]) and how
    assert dpib.to_channels(colour, grayscale=False) == (colour, None)


def test_options_and_inputs_fail_clearly() -> None:
    with pytest.raises(ConfigError, match="metrics.dpimagebench-utility.epoch"):
        dpib.DPImageBenchUtilityMetric.from_options({"epoch": 2})
    with pytest.raises(ConfigError, match="classifiers"):
        dpib.DPImageBenchUtilityMetric.from_options({"classifiers": ["vgg"]})
    with pytest.raises(ConfigError, match="classifiers"):
        dpib.DPImageBenchUtilityMetric.from_options({"classifiers": []})
    inputs = _inputs(epsilon=1.0)
    inputs.validation = None
    with pytest.raises(ConfigError, match="validation"):
        dpib.DPImageBenchUtilityMetric(epochs=1).evaluate(inputs)
    inputs = _inputs(epsilon=1.0)
    inputs.fake_attributes = None
    with pytest.raises(ConfigError, match="label"):
        dpib.DPImageBenchUtilityMetric(epochs=1).evaluate(inputs)
