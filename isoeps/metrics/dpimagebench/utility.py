"""DPImageBench's utility protocol: train its three classifiers on samples, test on real data.

A port of ``Evaluator.cal_acc`` in ``evaluation/evaluator.py`` of 2019ChenGong/DPImageBench
at 565f8d7 (MIT License), with its ``evaluation/ema.py`` and the classifiers of
:mod:`isoeps.metrics.dpimagebench.classifiers`:

- the samples are shuffled by ``np.random.default_rng(seed=0).permutation`` (a fixed seed,
  as theirs) and the first 55,000 train each classifier (fewer when fewer are given);
- recipe "mnist" (every dataset whose name has no "cifar"): 50 epochs of Adam at 0.01,
  StepLR(20, 0.2), batches of 256 (split into 16 or 64 accumulated micro-batches at 64 or
  128 px); recipe "cifar": 200 epochs of SGD at 0.1, momentum 0.9, weight decay 5e-4,
  StepLR(60, 0.2), batches of 126. Inputs are ``x / 255 * 2 - 1``;
- an EMA (0.9999, warmed up by ``min(decay, (1 + n) / (10 + n))``) of the trainable
  parameters is updated after every optimizer step; after every epoch the EMA weights (with
  the live model's BatchNorm statistics, which the EMA does not track) are evaluated on the
  sensitive validation split and on the test split, then the live weights are restored;
- the validation correct count gets ``Laplace(1 / ε)`` noise once per epoch, and the epoch
  with the highest noisy count (the last one on ties, as their ``>=``) gives the reported
  test accuracy. The noiseless-validation choice and the best test accuracy over epochs
  ("the flawed protocol the paper criticises") are recorded beside it.

Where this differs from DPImageBench, and why:

- Their noise comes from the global, unseeded ``np.random``; here each classifier draws its
  per-epoch noise from its own numpy Generator seeded from ``MetricInputs.seed`` (the same
  distribution, reproducible, and independent of which other classifiers run). Their batch
  order and initialisation come from torch's global generator; here from a seed derived the
  same way.
- The head has as many classes as the test split's ``label`` schema; theirs counts the
  distinct sample labels (the same unless a class is missing from the samples).
- Their noisy selection starts from a best count of 0 and would fail if every noisy count
  were negative; here the first epoch then wins.
- Accuracies are fractions in [0, 1]; DPImageBench logs percent.
- At 565f8d7, ``Evaluator.eval`` logs and averages the test accuracy of the NOISELESS
  validation choice (it appends ``test_acc_on_val``, the second value ``cal_acc`` returns);
  the noisy choice is computed but never reported. The value here is the noisy choice, as
  DPImageBench's README and paper describe it; the noiseless one is in
  ``details["noiseless_val_selected_accuracy"]``.

The validation read is an evaluation-only read of sensitive records, noised as DPImageBench
does but charged to no one's ε: every value has ``reads_private=True`` (so the harness marks
it not-DP) and ``reads_validation: True``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import Field, field_validator

from isoeps.datasets.dpimagebench import dpimagebench_gray
from isoeps.errors import ConfigError
from isoeps.log import get_logger, progress
from isoeps.metrics.base import Metric, MetricInputs, MetricOptions, MetricValue
from isoeps.metrics.bootstrap import wilson_interval
from isoeps.metrics.common import value
from isoeps.metrics.dpimagebench.preprocess import (
    PROTOCOL,
    is_grayscale,
    sensitive_geometry,
    to_sensitive_resolution,
)
from isoeps.metrics.preprocess import check_images
from isoeps.metrics.utility import TEST_SET_CI_NOTE

log = get_logger(__name__)

#: DPImageBench's classifier order (``Evaluator.acc_models``); above 32 px only the first two.
CLASSIFIERS: tuple[str, ...] = ("resnet", "wrn", "resnext")
#: The value name per classifier, and of their mean.
VALUE_NAMES: dict[str, str] = {name: f"dpib_acc_{name}" for name in CLASSIFIERS}
MEAN_NAME = "dpib_acc_mean"
#: ``synthetic_images[:55000]`` in ``cal_acc``.
PROTOCOL_TRAIN_IMAGES = 55_000
#: The sensitive validation and test splits DPImageBench selects on and tests on (MNIST,
#: F-MNIST and CIFAR alike).
PROTOCOL_SPLIT_SIZES: dict[str, int] = {"validation": 5_000, "reference": 10_000}
#: ``cal_acc`` shuffles the samples with this fixed seed before taking the first 55,000.
SHUFFLE_SEED = 0
EVAL_BATCH_SIZE = 1000  # the configs' eval.batch_size; BatchNorm in eval mode ignores it
VALIDATION_NOTE = (
    "reads the sensitive validation split (evaluation-only read of sensitive records) to "
    "choose the epoch; its correct counts are noised as DPImageBench does (Laplace 1/ε per "
    "epoch) but this read is not charged to the generator's ε, so the value is not DP"
)


@dataclass(frozen=True)
class Recipe:
    """One branch of ``cal_acc``: how each classifier is trained."""

    name: str
    epochs: int
    batch_size: int
    optimizer: Literal["adam", "sgd"]
    lr: float
    momentum: float
    weight_decay: float
    step_size: int
    gamma: float
    ema_decay: float = 0.9999


RECIPES: dict[str, Recipe] = {
    "mnist": Recipe("mnist", 50, 256, "adam", 0.01, 0.0, 0.0, 20, 0.2),
    "cifar": Recipe("cifar", 200, 126, "sgd", 0.1, 0.9, 5e-4, 60, 0.2),
}


def accumulation_steps(*, recipe: str, resolution: int) -> int:
    """``n_splits`` of ``cal_acc``: the "mnist" branch accumulates 16 micro-batches at 64 px
    and 64 at 128 px (each ``batch_size // n_splits`` images); otherwise 1.

    Args:
        recipe: the recipe's name.
        resolution: the training images' side.

    Returns:
        The number of micro-batches per optimizer step.
    """
    if recipe == "mnist":
        return {64: 16, 128: 64}.get(resolution, 1)
    return 1


class ExponentialMovingAverage:
    """DPImageBench's ``evaluation/ema.py`` (from fadel/pytorch_ema), with ``use_num_updates``:
    the n-th update uses ``decay_n = min(decay, (1 + n) / (10 + n))`` and moves each shadow
    parameter to ``s - (1 - decay_n) (s - p)``. Only parameters that require grad are
    tracked (BatchNorm running statistics are not)."""

    def __init__(self, parameters: Any, decay: float) -> None:
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"EMA decay must be in [0, 1], got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.shadow_params = [p.clone().detach() for p in parameters if p.requires_grad]
        self.collected_params: list[Any] = []

    def update(self, parameters: Any) -> None:
        import torch

        self.num_updates += 1
        decay = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        with torch.no_grad():
            trainable = [p for p in parameters if p.requires_grad]
            for shadow, param in zip(self.shadow_params, trainable):
                shadow.sub_((1.0 - decay) * (shadow - param))

    def copy_to(self, parameters: Any) -> None:
        trainable = [p for p in parameters if p.requires_grad]
        for shadow, param in zip(self.shadow_params, trainable):
            param.data.copy_(shadow.data)

    def store(self, parameters: Any) -> None:
        self.collected_params = [param.clone() for param in parameters]

    def restore(self, parameters: Any) -> None:
        for saved, param in zip(self.collected_params, parameters):
            param.data.copy_(saved.data)


def make_optimizer(*, recipe: Recipe, parameters: Any) -> tuple[Any, Any]:
    """The recipe's optimizer and its StepLR schedule (stepped once per epoch).

    Args:
        recipe: the training recipe.
        parameters: the model's parameters.

    Returns:
        ``(optimizer, scheduler)``.
    """
    import torch

    if recipe.optimizer == "adam":
        optimizer = torch.optim.Adam(parameters, lr=recipe.lr)
    else:
        optimizer = torch.optim.SGD(
            parameters, lr=recipe.lr, momentum=recipe.momentum, weight_decay=recipe.weight_decay
        )
    scheduler = torch.optim.lr_scheduler.StepLR(
        optimizer, step_size=recipe.step_size, gamma=recipe.gamma
    )
    return optimizer, scheduler


def selection_noise_scale(epsilon: float | None) -> tuple[float, str]:
    """The Laplace scale DPImageBench adds to each epoch's validation correct count.

    Args:
        epsilon: the cell's target ε; ``inf`` for a non-private row, None for a public one.

    Returns:
        ``(scale, note)``: ``1 / ε``, or 0 (no noise) for ``inf`` and for a public row.
    """
    if epsilon is None:
        return 0.0, "public row (no ε): the validation counts are not noised"
    epsilon = float(epsilon)
    if math.isnan(epsilon) or epsilon <= 0:
        raise ValueError(f"dpimagebench-utility: ε must be positive or inf, got {epsilon}")
    if math.isinf(epsilon):
        return 0.0, "ε = inf: no selection noise (DPImageBench's 1/ε is 0)"
    return 1.0 / epsilon, f"Laplace(scale 1/ε = {1.0 / epsilon:.6g}) per epoch"


def draw_selection_noise(rng: np.random.Generator, *, epochs: int, scale: float) -> np.ndarray:
    """One ``laplace(loc=0, scale)`` draw per epoch, in epoch order (zeros at scale 0).

    Args:
        rng: the generator of the draws.
        epochs: how many draws.
        scale: the Laplace scale; 0 for no noise.

    Returns:
        float ``(epochs,)``.
    """
    if scale == 0:
        return np.zeros(epochs)
    return np.array([rng.laplace(loc=0.0, scale=scale) for _ in range(epochs)])


def _last_argmax(values: np.ndarray) -> int:
    # cal_acc keeps an epoch whose value ties the best so far (">="): the last maximum wins.
    values = np.asarray(values, dtype=float)
    return int(len(values) - 1 - np.argmax(values[::-1]))


def select_epoch(
    *, val_correct: np.ndarray, test_accuracy: np.ndarray, noise: np.ndarray
) -> dict[str, Any]:
    """DPImageBench's epoch choices from per-epoch validation counts and test accuracies.

    Args:
        val_correct: correct validation predictions per epoch.
        test_accuracy: test accuracy per epoch.
        noise: the selection noise per epoch (zeros for no noise).

    Returns:
        The noisy choice (``selected_epoch``, 1-based, and ``selected_test_accuracy``), the
        noiseless one (``noiseless_selected_epoch``, ``noiseless_val_selected_accuracy``) and
        the best on test (``best_on_test_epoch``, ``best_on_test_accuracy``).
    """
    val_correct = np.asarray(val_correct, dtype=float)
    test_accuracy = np.asarray(test_accuracy, dtype=float)
    if not len(val_correct) or not val_correct.shape == test_accuracy.shape == np.shape(noise):
        raise ValueError("select_epoch: one validation count, test accuracy and noise per epoch")
    noisy = val_correct + np.asarray(noise, dtype=float)
    chosen, clean, best = (_last_argmax(v) for v in (noisy, val_correct, test_accuracy))
    return {
        "selected_epoch": chosen + 1,
        "selected_test_accuracy": float(test_accuracy[chosen]),
        "noiseless_selected_epoch": clean + 1,
        "noiseless_val_selected_accuracy": float(test_accuracy[clean]),
        "best_on_test_epoch": best + 1,
        "best_on_test_accuracy": float(test_accuracy[best]),
        "noisy_val_correct": [float(v) for v in noisy],
    }


@dataclass
class Prepared:
    """The three sets at the sensitive resolution and channel count: ``(N, C, S, S)`` uint8
    (or float32 in [0, 1] where colour samples were weighted to gray) and int64 labels."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int
    n_given: int
    records: dict[str, Any]

    @property
    def channels(self) -> int:
        return int(self.train_x.shape[1])

    @property
    def size(self) -> int:
        return int(self.train_x.shape[-1])


def split_is_grayscale(split: Any) -> bool:
    """Whether DPImageBench would read this split with one channel: ``info["channels"]``
    when the source says, else whether every image has three equal channels."""
    channels = split.info.get("channels")
    if channels in (1, 3):
        return channels == 1
    return is_grayscale(split.images)


def to_channels(images: np.ndarray, *, grayscale: bool) -> tuple[np.ndarray, str | None]:
    """Images with the channels the classifiers take, and what was done (None: nothing).

    Args:
        images: uint8 ``(N, 3, H, W)``.
        grayscale: whether the sensitive data is grayscale (one input channel).

    Returns:
        Colour data unchanged; grayscale data as its first channel when the three are equal,
        else weighted as ``cal_acc``'s caller does: ``0.299 c2 + 0.587 c1 + 0.114 c0``
        (float32 in [0, 1]; DPImageBench's channel order, kept). Unlike the fidelity path
        (``to_sensitive_channels``), no uint8 truncation: ``cal_acc`` trains on the float
        result directly, with no ``ToPILImage`` in between.
    """
    if not grayscale:
        return images, None
    if is_grayscale(images):
        return np.ascontiguousarray(images[:, :1]), "equal channels: first channel"
    gray = dpimagebench_gray(images.astype(np.float32) / np.float32(255.0))
    return gray.astype(np.float32), "colour samples weighted 0.299 c2 + 0.587 c1 + 0.114 c0"


def _labels(attributes: dict[str, np.ndarray] | None, *, n: int, what: str) -> np.ndarray:
    if not attributes or "label" not in attributes:
        raise ConfigError(f"dpimagebench-utility needs a 'label' attribute on {what}")
    labels = np.asarray(attributes["label"])
    if labels.shape != (n,) or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{what}: 'label' must be {n} ints, got {labels.dtype} {labels.shape}")
    return labels.astype(np.int64)


def _real_set(split: Any, *, size: int, padding: int, grayscale: bool, what: str) -> tuple:
    labels = _labels(split.attributes, n=len(split), what=f"the {what} split")
    images, record = to_sensitive_resolution(split.images, size=size, padding=padding, what=what)
    images, channels = to_channels(images, grayscale=grayscale)
    return images, labels, {**record, "channels": channels} if channels else record


def prepare(inputs: MetricInputs, *, max_train: int) -> Prepared:
    """Samples, validation and test split brought to the sensitive geometry, and the training
    subset: the first ``min(55,000, max_train)`` samples after ``cal_acc``'s fixed shuffle.

    Args:
        inputs: the cell's metric inputs (``validation`` must be given).
        max_train: the most sample images to train on.

    Returns:
        The prepared arrays and a record of every conversion.
    """
    fake = check_images(inputs.fake, what="samples")
    reference, validation = inputs.reference, inputs.validation
    if validation is None:
        raise ConfigError(
            "dpimagebench-utility needs the sensitive validation split (MetricInputs.validation);"
            " the dataset source must provide one"
        )
    schema = (reference.attribute_schema or {}).get("label")
    if not schema:
        raise ConfigError(f"dpimagebench-utility: test split {reference.dataset} has no labels")
    labels = _labels(inputs.fake_attributes, n=len(fake), what="the samples (fake_attributes)")
    if labels.min() < 0 or labels.max() >= len(schema):
        raise ValueError(
            f"sample labels must lie in [0, {len(schema)}) (the test split's classes), "
            f"got [{labels.min()}, {labels.max()}]"
        )
    size, padding = sensitive_geometry(reference)
    grayscale = split_is_grayscale(reference)
    records: dict[str, Any] = {"sensitive_size": size, "padding": padding}
    order = np.random.default_rng(seed=SHUFFLE_SEED).permutation(len(fake))
    chosen = order[: min(PROTOCOL_TRAIN_IMAGES, max_train)]
    train_x, records["samples"] = to_sensitive_resolution(
        fake[chosen], size=size, padding=padding, what="samples"
    )
    train_x, records["samples_channels"] = to_channels(train_x, grayscale=grayscale)
    val_x, val_y, records["validation"] = _real_set(
        validation, size=size, padding=padding, grayscale=grayscale, what="validation"
    )
    test_x, test_y, records["test"] = _real_set(
        reference, size=size, padding=padding, grayscale=grayscale, what="reference"
    )
    return Prepared(
        train_x, labels[chosen], val_x, val_y, test_x, test_y, len(schema), len(fake), records
    )


def _as_input(batch: np.ndarray, device: str):
    """``cal_acc``'s ``x * 2 - 1`` of images in [0, 1] (uint8 batches are divided by 255)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(batch)).to(device).float()
    if batch.dtype == np.uint8:
        x = x / 255.0
    return x * 2.0 - 1.0


class Trainer:
    """One classifier under one recipe: ``cal_acc``'s loop, one epoch per :meth:`epoch`.

    The accumulation counter carries across epochs, as theirs (``grad_accu_step`` is set
    once before the epoch loop).
    """

    def __init__(
        self,
        model: Any,
        *,
        recipe: Recipe,
        batch_size: int,
        accumulation: int,
        device: str,
        seed: int,
    ) -> None:
        import torch

        self.model = model.to(device)
        self.recipe, self.device, self.accumulation = recipe, device, accumulation
        self.micro_batch = max(batch_size // accumulation, 1)
        self.optimizer, self.scheduler = make_optimizer(
            recipe=recipe, parameters=self.model.parameters()
        )
        self.ema = ExponentialMovingAverage(self.model.parameters(), recipe.ema_decay)
        self.generator = torch.Generator().manual_seed(seed)
        self.pending = 0

    def train_epoch(self, images: np.ndarray, labels: np.ndarray) -> float:
        """One pass over shuffled micro-batches; returns the mean training loss.

        Args:
            images: uint8 ``(N, 3, H, W)`` training images.
            labels: int ``(N,)`` class indices.

        Returns:
            The loss averaged over the examples of the epoch.
        """
        import torch
        import torch.nn.functional as F

        self.model.train()
        order = torch.randperm(len(images), generator=self.generator).numpy()
        total = 0.0
        for start in range(0, len(order), self.micro_batch):
            idx = order[start : start + self.micro_batch]
            targets = torch.from_numpy(labels[idx]).to(self.device)
            if self.pending == 0:
                self.optimizer.zero_grad()
            loss = F.cross_entropy(self.model(_as_input(images[idx], self.device)), targets)
            (loss / self.accumulation).backward()
            total += float(loss.detach()) * len(idx)
            self.pending += 1
            if self.pending == self.accumulation:
                self.optimizer.step()
                self.pending = 0
                self.ema.update(self.model.parameters())
        self.scheduler.step()
        return total / len(order)

    def count_correct(self, images: np.ndarray, labels: np.ndarray) -> int:
        """Correct predictions of the model as it stands (eval mode, no grad).

        Args:
            images: uint8 ``(N, 3, H, W)``.
            labels: int ``(N,)`` class indices.

        Returns:
            How many argmax predictions equal ``labels``.
        """
        import torch

        self.model.eval()
        correct = 0
        with torch.no_grad():
            for start in range(0, len(images), EVAL_BATCH_SIZE):
                logits = self.model(_as_input(images[start : start + EVAL_BATCH_SIZE], self.device))
                truth = torch.from_numpy(labels[start : start + EVAL_BATCH_SIZE]).to(self.device)
                correct += int((logits.argmax(dim=1) == truth).sum())
        return correct

    def evaluate_ema(self, data: Prepared) -> tuple[int, int]:
        """Validation and test correct counts of the EMA weights; the live ones restored."""
        parameters = list(self.model.parameters())
        self.ema.store(parameters)
        self.ema.copy_to(parameters)
        try:
            return self.count_correct(data.val_x, data.val_y), self.count_correct(
                data.test_x, data.test_y
            )
        finally:
            self.ema.restore(parameters)


def seeds_for(seed: int, name: str) -> tuple[np.random.Generator, int]:
    """A classifier's selection-noise Generator and its torch seed, both from ``seed``.

    Args:
        seed: the cell's seed (``MetricInputs.seed``), non-negative.
        name: the classifier; each gets its own streams, whatever else runs.

    Returns:
        ``(numpy Generator for the noise, torch seed for init, dropout and batch order)``.
    """
    if seed < 0:
        raise ValueError(f"dpimagebench-utility: the seed must be non-negative, got {seed}")
    noise, torch_seed = np.random.SeedSequence([seed, CLASSIFIERS.index(name)]).spawn(2)
    return np.random.default_rng(noise), int(torch_seed.generate_state(1)[0])


def train_tracked(
    name: str,
    data: Prepared,
    *,
    recipe: Recipe,
    epochs: int,
    batch_size: int,
    device: str,
    seed: int,
) -> dict[str, list[float]]:
    """Train one classifier and record, per epoch, its EMA weights' validation correct count
    and test accuracy.

    Args:
        name: "resnet", "wrn" or "resnext".
        data: the prepared sets.
        recipe: the training recipe.
        epochs: how many epochs to train.
        batch_size: images per optimizer step.
        device: the torch device.
        seed: the classifier's torch seed (see :func:`seeds_for`).

    Returns:
        ``{"val_correct", "test_accuracy", "train_loss"}``, one entry per epoch.
    """
    import torch

    from isoeps.metrics.dpimagebench.classifiers import build_classifier

    torch.manual_seed(seed)  # init and dropout use torch's global generator, as theirs
    model = build_classifier(
        name,
        recipe=recipe.name,
        in_channels=data.channels,
        img_size=data.size,
        num_classes=data.num_classes,
    )
    trainer = Trainer(
        model,
        recipe=recipe,
        batch_size=batch_size,
        accumulation=accumulation_steps(recipe=recipe.name, resolution=data.size),
        device=device,
        seed=seed,
    )
    trace: dict[str, list[float]] = {"val_correct": [], "test_accuracy": [], "train_loss": []}
    for epoch in progress(range(epochs), desc=f"dpib {name}", leave=False):
        trace["train_loss"].append(trainer.train_epoch(data.train_x, data.train_y))
        val_correct, test_correct = trainer.evaluate_ema(data)
        trace["val_correct"].append(float(val_correct))
        trace["test_accuracy"].append(test_correct / len(data.test_y))
        accuracy = trace["test_accuracy"][-1]
        log.info("dpib %s epoch %d: val %d, test %.4f", name, epoch + 1, val_correct, accuracy)
    return trace


class DPImageBenchUtilityMetric(Metric):
    """``dpib_acc_<classifier>`` per classifier and ``dpib_acc_mean``: DPImageBench's
    test accuracy of classifiers trained on the samples, the epoch chosen on the noisy
    sensitive validation split."""

    name = "dpimagebench-utility"
    needs: ClassVar[frozenset[str]] = frozenset({"validation"})

    class Options(MetricOptions):
        """``epochs`` and ``batch_size`` default to the recipe's (50 and 256 for "mnist");
        ``recipe`` defaults to DPImageBench's rule ("cifar" when the dataset's name has
        "cifar"). Anything below the protocol (fewer epochs, classifiers or training images,
        another batch size) is listed in every value's ``details["deviations"]``."""

        epochs: int | None = Field(default=None, ge=1)
        classifiers: tuple[Literal["resnet", "wrn", "resnext"], ...] = CLASSIFIERS
        recipe: Literal["mnist", "cifar"] | None = None
        batch_size: int | None = Field(default=None, ge=1)
        device: str | None = None
        max_train: int = Field(default=PROTOCOL_TRAIN_IMAGES, ge=1)

        @field_validator("classifiers")
        @classmethod
        def _distinct(cls, names: tuple[str, ...]) -> tuple[str, ...]:
            if not names:
                raise ValueError("name at least one classifier")
            if len(set(names)) != len(names):
                raise ValueError(f"classifiers repeat: {list(names)}")
            return tuple(name for name in CLASSIFIERS if name in names)

    options: Options

    def evaluate(self, inputs: MetricInputs) -> list[MetricValue]:
        data = prepare(inputs, max_train=self.options.max_train)
        recipe, deviations = self._setting(inputs, data)
        scale, noise_note = selection_noise_scale(inputs.epsilon)
        epochs = self.options.epochs or recipe.epochs
        batch_size = self.options.batch_size or recipe.batch_size
        device = self.options.device or inputs.device
        per: dict[str, dict[str, Any]] = {}
        for name in self._classifiers(data.size):
            rng, torch_seed = seeds_for(inputs.seed, name)
            trace = train_tracked(
                name,
                data,
                recipe=recipe,
                epochs=epochs,
                batch_size=batch_size,
                device=device,
                seed=torch_seed,
            )
            noise = draw_selection_noise(rng, epochs=epochs, scale=scale)
            per[name] = {
                **select_epoch(
                    val_correct=np.array(trace["val_correct"]),
                    test_accuracy=np.array(trace["test_accuracy"]),
                    noise=noise,
                ),
                "val_accuracy": [c / len(data.val_y) for c in trace["val_correct"]],
                "test_accuracy": trace["test_accuracy"],
                "train_loss": trace["train_loss"],
            }
        common = self._common(data, recipe, epochs, batch_size, deviations, scale, noise_note)
        return self._values(per, common, n=len(data.train_y))

    def _classifiers(self, size: int) -> list[str]:
        allowed = CLASSIFIERS[:2] if size > 32 else CLASSIFIERS
        names = [name for name in self.options.classifiers if name in allowed]
        if not names:
            raise ConfigError(
                f"metrics.{self.name}.classifiers: above 32 px DPImageBench trains only "
                f"{list(allowed)}, got {list(self.options.classifiers)}"
            )
        return names

    def _setting(self, inputs: MetricInputs, data: Prepared) -> tuple[Recipe, list[str]]:
        """The recipe, and every way this setting falls short of DPImageBench's protocol."""
        rule = "cifar" if "cifar" in inputs.reference.dataset.lower() else "mnist"
        recipe = RECIPES[self.options.recipe or rule]
        deviations = []
        if recipe.name != rule:
            deviations.append(f"recipe {recipe.name} where DPImageBench uses {rule}")
        epochs = self.options.epochs or recipe.epochs
        if epochs != recipe.epochs:
            deviations.append(f"epochs: {epochs} of the recipe's {recipe.epochs}")
        batch = self.options.batch_size or recipe.batch_size
        if batch != recipe.batch_size:
            deviations.append(f"batch size {batch} where the recipe uses {recipe.batch_size}")
        allowed = CLASSIFIERS[:2] if data.size > 32 else CLASSIFIERS
        missing = [name for name in allowed if name not in self.options.classifiers]
        if missing:
            deviations.append(f"classifiers: without {', '.join(missing)}")
        if len(data.train_y) < PROTOCOL_TRAIN_IMAGES:
            given = min(data.n_given, PROTOCOL_TRAIN_IMAGES)
            why = f"max_train {self.options.max_train}" if given > len(data.train_y) else ""
            deviations.append(
                f"train images: {len(data.train_y)} of DPImageBench's {PROTOCOL_TRAIN_IMAGES}"
                f" ({why or f'only {data.n_given} samples given'})"
            )
        deviations += _split_size_deviations(inputs)
        return recipe, deviations

    def _common(
        self,
        data: Prepared,
        recipe: Recipe,
        epochs: int,
        batch_size: int,
        deviations: list[str],
        scale: float,
        noise_note: str,
    ) -> dict[str, Any]:
        return {
            "protocol": PROTOCOL,
            "protocol_exact": not deviations,
            "deviations": deviations,
            "recipe": recipe.name,
            "epochs_trained": epochs,
            "batch_size": batch_size,
            "classifiers": self._classifiers(data.size),
            "n_train": len(data.train_y),
            "n_samples_given": data.n_given,
            "n_validation": len(data.val_y),
            "n_test": len(data.test_y),
            "num_classes": data.num_classes,
            "input_channels": data.channels,
            "resolution": data.size,
            "preprocessing": data.records,
            "selection_noise_scale": scale,
            "selection_noise": noise_note,
            "accuracy_scale": "fraction in [0, 1] (DPImageBench logs percent)",
            "reads_validation": True,
            "not_dp": VALIDATION_NOTE,
        }

    def _values(
        self, per: dict[str, dict[str, Any]], common: dict[str, Any], *, n: int
    ) -> list[MetricValue]:
        n_test = common["n_test"]
        common = {**common, "ci_note": TEST_SET_CI_NOTE}
        values = [
            value(
                VALUE_NAMES[name],
                result["selected_test_accuracy"],
                higher_is_better=True,
                n=n,
                details={**common, "kind": "utility_accuracy", "classifier": name, **result},
                reads_private=True,
                ci=wilson_interval(proportion=result["selected_test_accuracy"], n=n_test),
            )
            for name, result in per.items()
        ]

        def mean(key: str) -> float:
            return float(np.mean([result[key] for result in per.values()]))

        selected = [result["selected_test_accuracy"] for result in per.values()]
        values.append(
            value(
                MEAN_NAME,
                mean("selected_test_accuracy"),
                higher_is_better=True,
                n=n,
                details={
                    **common,
                    "kind": "utility_accuracy",
                    "per_classifier": dict(zip(per, selected)),
                    "std_over_classifiers": float(np.std(selected)),
                    "selected_epochs": {k: r["selected_epoch"] for k, r in per.items()},
                    "selected_test_accuracy": mean("selected_test_accuracy"),
                    "best_on_test_accuracy": mean("best_on_test_accuracy"),
                    "noiseless_val_selected_accuracy": mean("noiseless_val_selected_accuracy"),
                },
                reads_private=True,
                ci=wilson_interval(proportion=mean("selected_test_accuracy"), n=n_test),
            )
        )
        return values


def _split_size_deviations(inputs: MetricInputs) -> list[str]:
    """A validation or test split smaller than DPImageBench's (a CPU-sized suite's ``n``)."""
    out = []
    for name, size in PROTOCOL_SPLIT_SIZES.items():
        split = getattr(inputs, name)
        if split is not None and len(split) < size:
            role = "validation (epoch selection)" if name == "validation" else "test"
            out.append(f"{role} split: {len(split)} of DPImageBench's {size} records")
    return out
