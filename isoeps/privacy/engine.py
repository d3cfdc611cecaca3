"""The shared DP-SGD engine: Poisson batches, per-sample clipping, Gaussian noise, one step.

Every method that trains on private records with gradients goes through
:class:`PrivateGradients` (or its default loop :func:`train_dp_sgd`); no method adds noise
itself. One logical step is:

1. a Poisson batch from the guard (``guard.poisson_batches`` writes ``SubsampledGaussian(sigma,
   q, T)`` to the ledger before any record is read); an empty batch is legal and the step is
   then noise only;
2. the batch is processed in physical chunks of at most ``max_physical_batch_size`` records
   (virtual batches: memory does not grow with the expected batch size); each chunk's
   per-sample gradients over the trainable parameters are clipped to global L2 norm
   ``clip_norm`` and added to a running sum (the backend's ``clipped_sum``; the ``bk`` backend
   gets it without materialising per-sample gradients);
3. N(0, (sigma C)^2) noise is added to every coordinate of the sum;
4. the result is divided by the constant expected batch size ``q N`` (never by the realised
   batch size, which would leak it) and handed to the optimizer.

:class:`PrivateGradients` yields the gradient of each step; the caller applies it
(:func:`train_dp_sgd` is the default loop, with the configured optimizer).

The ``inf`` budget runs the same schedule (Poisson batches at rate q, T steps, division by
``q N``) through an ``inf`` guard, with no clipping and no noise: the ledger then reads
epsilon = inf.

Per-record randomness: ``collate(records, rngs)`` gets one numpy generator per record, seeded
by the guard from the record's id and the step (:meth:`PrivateData.record_seeds`), so the
caption drawn for a record and its condition dropout never depend on which other records are
in the batch (and come from the CSPRNG in secure mode).

Noise source: with a ``secure`` guard the normals come from the guard's CSPRNG. In benchmark
mode each step draws one 62-bit seed from the guard's seeded stream and fills a
``torch.Generator`` on the parameters' device with it: reproducible from the cell seed, and
fast on a GPU. Every draw of more than a few hundred normals passes a sanity check (mean and
variance of a standard normal) before it is scaled, so a degenerate noise source (zeros, a
patched generator) fails the run instead of releasing un-noised gradients.

The module is put in eval mode and left there: frozen parts with train-time state (a VQ-EMA
codebook) must not update, and our models use no dropout. Parameters outside ``trainable`` get
``requires_grad=False`` during training (restored afterwards) and are never touched.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from isoeps.accountants import (
    PRIMARY,
    CalibrationError,
    Ledger,
    PrivacyBudget,
    SubsampledGaussian,
    accountant_names,
    calibrate,
    epsilon,
)
from isoeps.errors import ConfigError, PrivacyError
from isoeps.log import get_logger, progress
from isoeps.privacy.config import DPSGDConfig
from isoeps.privacy.guard import PoissonBatch, PrivateData
from isoeps.privacy.per_sample import (
    BACKENDS,
    LossFn,
    batch_size,
    check_losses,
    create_backend,
)
from isoeps.privacy.record_streams import record_generators

#: ``collate(records, rngs)``: one generator per record (keyed to its id by the guard).
Collate = Callable[[Any, Sequence[np.random.Generator]], dict[str, Tensor]]
#: Draws of at least this many normals are checked for a standard normal's mean and variance.
_NOISE_CHECK_MIN = 256


@dataclass
class DPPlan:
    """What a run will spend: printed by ``--dry-run`` and stored with the run."""

    sample_rate: float
    steps: int
    #: sigma; ``None`` in ``inf`` mode.
    noise_multiplier: float | None
    clip_norm: float
    expected_batch_size: int
    #: Achieved epsilon of the whole run per accountant (``prv`` is primary); inf in ``inf`` mode.
    epsilon: dict[str, float] = field(default_factory=dict)
    delta: float | None = None

    @property
    def is_private(self) -> bool:
        return self.noise_multiplier is not None

    @property
    def noise_std(self) -> float:
        """The std of the noise added to the clipped sum: sigma * C (0 in ``inf`` mode)."""
        return (self.noise_multiplier or 0.0) * self.clip_norm

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(kw_only=True)
class DPTrainReport:
    """What :func:`train_dp_sgd` did."""

    plan: DPPlan
    steps_done: int
    backend: str
    sampler: str = "poisson"
    wall_time_s: float
    secure: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


__all__ = [
    "DPPlan",
    "DPSGDConfig",
    "DPTrainReport",
    "PrivateGradients",
    "plan_dp_sgd",
    "train_dp_sgd",
]


def _too_small(budget: PrivacyBudget, config: DPSGDConfig, num_records: int, q: float) -> str:
    return (
        f"epsilon={budget.epsilon:g} is too small to train {config.steps} steps at expected "
        f"batch {config.expected_batch_size} of {num_records} records (sample rate {q:.3g}): "
        "try fewer steps or a larger expected batch"
    )


def plan_dp_sgd(
    *,
    config: DPSGDConfig,
    budget: PrivacyBudget,
    num_records: int,
    accountants: Sequence[str] | None = None,
    prefix: Ledger | None = None,
) -> DPPlan:
    """Calibrate sigma for ``budget`` (PRV) and report the achieved epsilon per accountant.

    ``prefix`` holds what the cell already spent (e.g. a noisy statistic released before
    DP-SGD): sigma is calibrated so that prefix + DP-SGD meets the target, and the achieved
    epsilon covers both.

    Args:
        config: the DP-SGD settings (clip norm, expected batch size, steps).
        budget: the cell's budget; ``inf`` gives a plan with no sigma and infinite epsilon.
        num_records: N, the number of private records (an integer >= 1); q = B / N.
        accountants: the accountants whose achieved epsilon is reported; None for all
            registered.
        prefix: what the cell already spent, or None.

    Returns:
        q, T, C, B, the calibrated sigma (None under ``inf``) and the achieved epsilon per
        accountant.

    Raises:
        ConfigError: (a ``ValueError``) for a ``public`` budget, ``num_records`` that is not an
            integer >= 1, a sample rate above 1, a ``prefix`` that records non-private access,
            or a target epsilon that cannot be reached with the configured steps and batch.
    """
    if budget.mode == "public":
        raise ConfigError("budget 'public' trains on no private data: do not call DP-SGD")
    if isinstance(num_records, bool) or not isinstance(num_records, int) or num_records < 1:
        raise ConfigError(f"num_records must be an integer >= 1, got {num_records!r}")
    if config.expected_batch_size > num_records:
        raise ConfigError(
            f"dp_sgd.expected_batch_size={config.expected_batch_size} exceeds the {num_records} "
            "private records (the sample rate B/N must be <= 1)"
        )
    q = config.expected_batch_size / num_records
    common: dict[str, Any] = {
        "sample_rate": q,
        "steps": config.steps,
        "clip_norm": config.clip_norm,
        "expected_batch_size": config.expected_batch_size,
    }
    names = list(accountants) if accountants is not None else accountant_names()
    if not budget.is_private:
        return DPPlan(noise_multiplier=None, epsilon={n: math.inf for n in names}, **common)
    if prefix is not None and not prefix.is_private:
        raise ConfigError(
            "the ledger already records raw (non-private) access: epsilon is infinite, "
            f"so a private budget of epsilon={budget.epsilon:g} cannot be met"
        )
    try:
        sigma = calibrate(
            target_epsilon=budget.epsilon,
            delta=budget.delta,
            sample_rate=q,
            steps=config.steps,
            accountant=PRIMARY,
            prefix=prefix if prefix is not None and not prefix.is_empty else None,
        )
    except CalibrationError as err:
        raise ConfigError(f"{_too_small(budget, config, num_records, q)} ({err})") from err
    ledger = Ledger([*(prefix or ()), SubsampledGaussian(float(sigma), q, config.steps)])
    achieved = {n: float(epsilon(ledger, delta=budget.delta, accountant=n)) for n in names}
    return DPPlan(noise_multiplier=float(sigma), epsilon=achieved, delta=budget.delta, **common)


def gaussian_noise(guard: PrivateData, like: Sequence[Tensor], *, std: float) -> list[Tensor]:
    """One N(0, std^2) tensor shaped like each of ``like``, from the guard's randomness.

    Secure mode: the normals come from the CSPRNG. Benchmark mode: a ``torch.Generator`` on the
    tensors' device, seeded with one draw from the (seeded) mechanism stream.

    Args:
        guard: the guard whose mechanism randomness supplies the draws.
        like: the tensors whose shapes, device and dtype the noise takes.
        std: the noise standard deviation (sigma C for DP-SGD).

    Returns:
        One noise tensor per tensor of ``like``, in order.
    """
    total = sum(t.numel() for t in like)
    if total == 0:
        return [torch.zeros_like(t) for t in like]
    reference = like[0]
    if guard.secure:
        draws = torch.from_numpy(guard.noise_normals(total)).to(
            device=reference.device, dtype=reference.dtype
        )
    else:
        generator = torch.Generator(device=reference.device).manual_seed(guard.noise_seed())
        draws = torch.randn(
            total, generator=generator, device=reference.device, dtype=reference.dtype
        )
    check_standard_normal(draws)
    pieces = torch.split(draws.mul_(std), [t.numel() for t in like])
    return [piece.view_as(t) for piece, t in zip(pieces, like)]


def check_standard_normal(draws: Tensor) -> None:
    """Raise :class:`PrivacyError` unless ``draws`` look like N(0, 1) samples.

    Only draws of at least 256 values are checked; the bounds are 8 standard errors of the
    mean and of the variance, so an honest source fails with probability below 1e-14."""
    count = draws.numel()
    if count < _NOISE_CHECK_MIN:
        return
    values = draws.detach().double()
    mean, var = float(values.mean()), float(values.var())
    if not (abs(mean) < 8 / math.sqrt(count) and abs(var - 1) < 8 * math.sqrt(2 / count)):
        raise PrivacyError(
            f"the mechanism's noise source failed its sanity check (mean {mean:.3g}, variance "
            f"{var:.3g} over {count} draws; a standard normal was expected): no gradient "
            "was released"
        )


def select_trainable(module: nn.Module, trainable: Sequence[str] | None) -> dict[str, nn.Parameter]:
    """The parameters to train: by exact name or module-name prefix; ``None`` = all that
    require grad. Unknown names raise ``ConfigError``.

    Args:
        module: the model whose ``named_parameters()`` are searched.
        trainable: exact parameter names or module-name prefixes (a list, not a string);
            None for every parameter that requires grad.

    Returns:
        ``{name: parameter}`` of the selected parameters.

    Raises:
        ConfigError: ``trainable`` is a string, a name matches no parameter, or nothing is
            selected.
    """
    named = dict(module.named_parameters())
    if trainable is None:
        selected = {n: p for n, p in named.items() if p.requires_grad}
    else:
        if isinstance(trainable, str):
            raise ConfigError(f"trainable must be a list of parameter names, got {trainable!r}")
        selected = {}
        for wanted in trainable:
            hits = {n: p for n, p in named.items() if n == wanted or n.startswith(f"{wanted}.")}
            if not hits:
                known = ", ".join(list(named)[:8])
                raise ConfigError(
                    f"trainable name {wanted!r} matches no parameter of "
                    f"{type(module).__name__} (known: {known}, ...)"
                )
            selected.update(hits)
    if not selected:
        raise ConfigError(f"{type(module).__name__} has no trainable parameters")
    return selected


@contextlib.contextmanager
def _only_trainable(module: nn.Module, params: Mapping[str, nn.Parameter]) -> Iterator[None]:
    """``requires_grad`` on exactly ``params`` for the duration; the old flags come back."""
    wanted = {id(p) for p in params.values()}
    flags = [(p, p.requires_grad) for p in module.parameters()]
    try:
        for p, _ in flags:
            p.requires_grad_(id(p) in wanted)
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)


def _chunks(records: Any, seeds: np.ndarray, size: int, chunk: int) -> Iterator[tuple[Any, Any]]:
    """(records, their seeds) in physical chunks of at most ``chunk``."""
    if size <= chunk:
        if size:
            yield records, seeds
        return
    for start in range(0, size, chunk):
        stop = min(start + chunk, size)
        if hasattr(records, "take"):
            yield records.take(np.arange(start, stop)), seeds[start:stop]
        else:
            yield records[start:stop], seeds[start:stop]


def _subset(records: Any, positions: np.ndarray) -> Any:
    """The records at ``positions`` of a batch (``take`` when the records have it)."""
    if hasattr(records, "take"):
        return records.take(positions)
    return [records[int(i)] for i in positions]


def _to_device(batch: Mapping[str, Tensor], device: torch.device) -> dict[str, Tensor]:
    return {key: value.to(device) for key, value in batch.items()}


def _make_optimizer(config: DPSGDConfig, params: Sequence[nn.Parameter]) -> torch.optim.Optimizer:
    if config.optimizer == "adam":
        return torch.optim.Adam(params, lr=config.learning_rate)
    return torch.optim.SGD(params, lr=config.learning_rate)


class _StepGradient:
    """Sums the (clipped, when private) per-record gradients of one logical batch."""

    def __init__(
        self,
        *,
        module: nn.Module,
        loss_fn: LossFn,
        collate: Collate,
        params: Mapping[str, nn.Parameter],
        config: DPSGDConfig,
        plan: DPPlan,
        device: torch.device,
    ) -> None:
        self._module = module
        self._loss_fn = loss_fn
        self._collate = collate
        self._params = dict(params)
        self._config = config
        self._device = device
        self._backend = (
            create_backend(config.backend, module=module, loss_fn=loss_fn, params=params)
            if plan.is_private
            else None
        )

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()

    def _chunk_sum(self, chunk: dict[str, Tensor]) -> dict[str, Tensor]:
        if self._backend is not None:
            return self._backend.clipped_sum(chunk, clip_norm=self._config.clip_norm)
        losses = self._loss_fn(self._module, chunk)
        check_losses(losses, batch_size(chunk))
        grads = torch.autograd.grad(losses.sum(), list(self._params.values()))
        return dict(zip(self._params, grads))

    def __call__(self, batch: PoissonBatch) -> dict[str, Tensor]:
        total = {name: torch.zeros_like(p) for name, p in self._params.items()}
        chunk_size = self._config.max_physical_batch_size
        for records, seeds in _chunks(batch.records, batch.seeds, batch.size, chunk_size):
            chunk = _to_device(self._collate(records, record_generators(seeds)), self._device)
            for name, value in self._chunk_sum(chunk).items():
                total[name] += value
        return total


class PrivateGradients:
    """The DP gradient core: an iterator of privatised gradient steps.

    Each step draws a Poisson batch through the guard, clips every record's gradient with the
    configured backend, adds N(0, (sigma C)^2) noise to the sum and divides by the constant
    ``q N``; it yields that gradient, one tensor per trainable parameter name, and the caller
    applies it. Optimizer, learning-rate schedule, EMA, warm-up and gradient accumulation are
    post-processing the caller owns (:func:`train_dp_sgd` is the default loop). Under an
    ``inf`` guard the same schedule runs with no clipping and no noise.

    Args:
        guard: the private records; its mode (``private``/``inf``) must match ``budget``.
        module: the model; put in eval mode and moved to ``device``.
        loss_fn: ``loss_fn(module, batch)`` -> per-example losses ``(B,)``; must work for
            B = 1. Its randomness comes from the batch (``collate``'s per-record generators).
        collate: ``collate(records, rngs)`` -> batched tensors, one generator per record.
        config: clipping, batch, steps and backend (``learning_rate``/``optimizer`` are the
            default loop's).
        budget: sigma is calibrated so that the guard's ledger plus this run meets it.
        trainable: parameter names or module-name prefixes to update (None: all that
            require grad); the rest are frozen while iterating.
        device: where the gradients are computed.
        accountants: whose epsilon :attr:`plan` reports (default: all registered).

    The ledger is written when iteration starts; a second iteration is refused (it would
    spend the budget twice).
    """

    def __init__(
        self,
        *,
        guard: PrivateData,
        module: nn.Module,
        loss_fn: LossFn,
        collate: Collate,
        config: DPSGDConfig,
        budget: PrivacyBudget,
        trainable: Sequence[str] | None = None,
        device: str = "cpu",
        accountants: Sequence[str] | None = None,
    ) -> None:
        if budget.mode != guard.mode:
            raise ConfigError(
                f"budget {budget.label!r} but the guard runs {guard.mode!r}: the harness builds "
                "the guard for the cell's budget"
            )
        select_trainable(module, trainable)  # fail on a bad name before the (slow) calibration
        self.plan = plan_dp_sgd(
            config=config,
            budget=budget,
            num_records=len(guard),
            accountants=accountants,
            prefix=guard.ledger,
        )
        self.device = torch.device(device)
        module.to(self.device)
        module.eval()
        #: The parameters the yielded gradients are for, by name.
        self.params = select_trainable(module, trainable)
        if self.plan.is_private:
            # An unsupported model must fail before the guard writes the ledger.
            BACKENDS[config.backend].check(module=module, params=self.params)
        self._guard, self._module, self._config = guard, module, config
        self._loss_fn, self._collate = loss_fn, collate
        self._started = False

    def __len__(self) -> int:
        return self.plan.steps

    def __iter__(self) -> Iterator[dict[str, Tensor]]:
        if self._started:
            raise PrivacyError(
                "PrivateGradients is single-use: iterating again would spend the budget twice"
            )
        self._started = True
        return self._steps()

    def _steps(self) -> Iterator[dict[str, Tensor]]:
        plan, guard = self.plan, self._guard
        batches = guard.poisson_batches(
            noise_multiplier=plan.noise_multiplier, sample_rate=plan.sample_rate, steps=plan.steps
        )
        divisor = plan.sample_rate * len(guard)
        with _only_trainable(self._module, self.params):
            step_gradient = _StepGradient(
                module=self._module,
                loss_fn=self._loss_fn,
                collate=self._collate,
                params=self.params,
                config=self._config,
                plan=plan,
                device=self.device,
            )
            canaries = guard.gradient_canaries
            if canaries is not None:
                canaries.bind(self.params)
            try:
                for batch in batches:
                    total = self._step_sum(step_gradient, batch, canaries)
                    if plan.is_private:
                        noise = gaussian_noise(guard, list(total.values()), std=plan.noise_std)
                        for value, draw in zip(total.values(), noise):
                            value.add_(draw)
                    if canaries is not None:
                        canaries.observe(total)
                    yield {name: value.div_(divisor) for name, value in total.items()}
            finally:
                step_gradient.close()

    def _step_sum(
        self, step_gradient: _StepGradient, batch: PoissonBatch, canaries: Any
    ) -> dict[str, Tensor]:
        """The batch's clipped gradient sum; under a white-box audit each canary record's
        gradient is replaced by its Dirac canary (see :mod:`isoeps.privacy.gradient_canaries`)."""
        if canaries is None:
            return step_gradient(batch)
        ordinary, found = canaries.split(batch.ids)
        if len(found):
            batch = PoissonBatch(
                step=batch.step, records=_subset(batch.records, ordinary), size=len(ordinary),
                seeds=batch.seeds[ordinary], ids=tuple(batch.ids[i] for i in ordinary),
            )  # fmt: skip
        total = step_gradient(batch)
        canaries.add(total, found, clip_norm=self._config.clip_norm)
        return total


def train_dp_sgd(
    *,
    guard: PrivateData,
    module: nn.Module,
    loss_fn: LossFn,
    collate: Collate,
    config: DPSGDConfig,
    budget: PrivacyBudget,
    trainable: Sequence[str] | None = None,
    device: str = "cpu",
    logger: logging.Logger | None = None,
    show_progress: bool = True,
    accountants: Sequence[str] | None = None,
    warmup_steps: int = 0,
    ema_decay: float = 0.0,
) -> DPTrainReport:
    """The default loop over :class:`PrivateGradients`: the configured optimizer applies each
    privatised gradient. Arguments as there; logs report the step, sigma and the planned
    epsilon of the whole run, never losses. The warm-up and the average are post-processing
    of the privatised gradients, like the optimizer.

    Args:
        guard: the private records; its mode must match ``budget``.
        module: the model, trained in place.
        loss_fn: ``loss_fn(module, batch)`` -> per-example losses ``(B,)``.
        collate: ``collate(records, rngs)`` -> batched tensors.
        config: clipping, batch, steps, backend, and the optimizer and learning rate.
        budget: the budget sigma is calibrated for.
        trainable: parameter names or module-name prefixes to update; None for all that
            require grad.
        device: where the gradients are computed.
        logger: where progress is logged; None for the engine's logger.
        show_progress: show a progress bar.
        accountants: whose epsilon the plan reports; None for all registered.
        warmup_steps: a linear learning-rate warm-up over this many steps; 0 for none.
        ema_decay: keep an exponential moving average of the trained parameters and copy it
            into them at the end; 0 keeps the last iterate.

    Returns:
        What was run: the plan (q, T, sigma, achieved epsilon), steps done, backend, time.

    Raises:
        ValueError: ``warmup_steps`` below 0, or ``ema_decay`` outside [0, 1).
    """
    if warmup_steps < 0 or not 0.0 <= ema_decay < 1.0:
        raise ValueError(
            f"warmup_steps must be >= 0 and ema_decay in [0, 1); got {warmup_steps}, {ema_decay}"
        )
    log = logger or get_logger("privacy.engine")
    gradients = PrivateGradients(
        guard=guard, module=module, loss_fn=loss_fn, collate=collate, config=config,
        budget=budget, trainable=trainable, device=device, accountants=accountants,
    )  # fmt: skip
    plan = gradients.plan
    _log_plan(log, plan, config.backend)
    log_every = max(1, plan.steps // 10)
    optimizer = _make_optimizer(config, list(gradients.params.values()))
    schedule = _linear_warmup(optimizer, warmup_steps) if warmup_steps else None
    average = _ParameterAverage(gradients.params, decay=ema_decay) if ema_decay else None
    start = time.perf_counter()
    steps_done = 0
    bar = progress(  # tqdm calls iter() twice on an iterable: hand it the one iterator
        iter(gradients),
        total=plan.steps,
        desc="dp-sgd",
        log_off_terminal=False,
        **({} if show_progress else {"disable": True}),
    )
    for gradient in bar:
        for name, p in gradients.params.items():
            p.grad = gradient[name]
        optimizer.step()
        if schedule is not None:
            schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if average is not None:
            average.update()
        steps_done += 1
        if steps_done % log_every == 0 or steps_done == plan.steps:
            log.info(
                "dp-sgd step %d/%d sigma=%s epsilon(%s, whole run)=%.4g",
                steps_done, plan.steps, _sigma_text(plan), PRIMARY,
                plan.epsilon.get(PRIMARY, math.nan),
            )  # fmt: skip
    if average is not None:
        average.copy_in()
    return DPTrainReport(
        plan=plan,
        steps_done=steps_done,
        backend=config.backend if plan.is_private else "autograd",
        wall_time_s=time.perf_counter() - start,
        secure=guard.secure,
    )


def _linear_warmup(optimizer: torch.optim.Optimizer, steps: int) -> Any:
    """The learning rate rises linearly to its configured value over ``steps`` steps."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / steps))


class _ParameterAverage:
    """An exponential moving average of parameters, updated after each optimizer step."""

    def __init__(self, params: Mapping[str, nn.Parameter], *, decay: float) -> None:
        self.params, self.decay = params, decay
        self.average = {name: p.detach().clone() for name, p in params.items()}

    @torch.no_grad()
    def update(self) -> None:
        for name, p in self.params.items():
            self.average[name].mul_(self.decay).add_(p.detach(), alpha=1.0 - self.decay)

    @torch.no_grad()
    def copy_in(self) -> None:
        for name, p in self.params.items():
            p.copy_(self.average[name])


def _sigma_text(plan: DPPlan) -> str:
    return f"{plan.noise_multiplier:.4g}" if plan.is_private else "none"


def _log_plan(log: logging.Logger, plan: DPPlan, backend: str) -> None:
    """What the run will spend; never a loss (a statistic of the private data)."""
    log.info(
        "dp-sgd: %d steps, q=%.4g, sigma=%s, C=%g, backend=%s, epsilon of the run: %s",
        plan.steps, plan.sample_rate, _sigma_text(plan), plan.clip_norm, backend,
        ", ".join(f"{n}={v:.4g}" for n, v in plan.epsilon.items()),
    )  # fmt: skip
