"""isoeps' clipping and DP-SGD step against opacus 1.6 as an outside reference.

1. The ``bk`` (book-keeping / ghost) backend's clipped per-sample gradient sum against opacus'
   own ghost clipping (``PrivacyEngine.make_private(grad_sample_mode="ghost")``: a
   ``GradSampleModuleFastGradientClipping``, a ``DPOptimizerFastGradientClipping`` and the
   two-backward ``DPLossFastGradientClipping``, noise multiplier 0), and against isoeps'
   ``functorch`` backend, on a model made of the layers bk supports (Embedding, LayerNorm,
   Linear on (B, T, d) and on (B, d) inputs), with a clip norm that clips some examples only.
2. One step of the engine (:func:`isoeps.privacy.engine.train_dp_sgd`, plain SGD, through a
   ``PrivateData`` guard) against opacus ``GradSampleModule`` + ``DPOptimizer`` on the batch
   the guard drew, with the noise fixed on both sides.

How opacus scales (read from opacus/optimizers/optimizer.py and
opacus/utils/fast_gradient_clipping_utils.py, 1.6): the ghost loss' second backward leaves the
*clipped sum* in ``p.grad`` (``sum_i coef_i * loss_i``); ``optimizer.step()`` then adds noise
and, only with ``loss_reduction="mean"``, divides by ``expected_batch_size *
accumulated_iterations`` (1 here). With ``loss_reduction="sum"`` it never divides.
"""

from __future__ import annotations

import copy
import warnings

import numpy as np
import opacus.optimizers.optimizer as opacus_optimizer
import pytest
import torch
import torch.nn.functional as F
from opacus import GradSampleModule, PrivacyEngine
from opacus.optimizers import DPOptimizer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from isoeps.accountants import PrivacyBudget, SubsampledGaussian
from isoeps.privacy import PrivateData
from isoeps.privacy import engine as engine_module
from isoeps.privacy.engine import DPSGDConfig, train_dp_sgd
from isoeps.privacy.per_sample import clip_and_sum, create_backend, per_sample_norms

VOCAB, DIM, WIDTH, CLASSES, SEQ = 7, 8, 16, 5, 6


class Tagger(nn.Module):
    """Embedding -> LayerNorm -> Linear on (B, T, d) -> mean over T -> Linear on (B, d).

    A small vocabulary makes ids repeat within a sequence (the embedding norm's cross terms).
    For bk, ``mix`` takes the explicit per-sample weight path (T (d_in + d_out) > d_in d_out)
    and ``head`` the Gram path, so both are compared."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(VOCAB, DIM)
        self.norm = nn.LayerNorm(DIM)
        self.mix = nn.Linear(DIM, WIDTH)
        self.head = nn.Linear(WIDTH, CLASSES)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.mix(self.norm(self.emb(ids)))).mean(dim=1))


def make_model(seed: int, dtype: torch.dtype) -> Tagger:
    torch.manual_seed(seed)
    model = Tagger().to(dtype)
    for p in model.parameters():  # away from the init, so that per-example norms spread out
        p.data.normal_(0.0, 0.5)
    return model


def make_data(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB, (n, SEQ), generator=generator)
    labels = torch.randint(0, CLASSES, (n,), generator=generator)
    return ids, labels


def loss_fn(module: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return F.cross_entropy(module(batch["ids"]), batch["y"], reduction="none")


def functorch_per_sample(model: nn.Module, batch: dict[str, torch.Tensor]):
    params = dict(model.named_parameters())
    with create_backend("functorch", module=model, loss_fn=loss_fn, params=params) as grads:
        return grads.compute(batch)


def middle_clip(norms: torch.Tensor) -> float:
    """A clip norm between two per-example norms near the median: some clipped, some not."""
    ordered = norms.sort().values
    middle = len(ordered) // 2
    clip = float(ordered[middle - 1] + ordered[middle]) / 2
    assert int((norms > clip).sum()) >= 2 and int((norms < clip).sum()) >= 2
    return clip


def relative_error(got: torch.Tensor, expected: torch.Tensor) -> float:
    return float((got - expected).norm() / expected.norm().clamp(min=1e-30))


def opacus_ghost_sum(model: nn.Module, ids, labels, *, clip: float, reduction: str):
    """opacus 1.6 ghost clipping end to end (noise 0); returns ({name: clipped sum}, norms)."""
    model = copy.deepcopy(model).train()  # opacus records activations in training mode only
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)
    loader = DataLoader(TensorDataset(ids, labels), batch_size=len(ids))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Secure RNG turned off", full backward hook notes
        module, dp_optimizer, criterion, _ = PrivacyEngine().make_private(
            module=model,
            optimizer=optimizer,
            criterion=nn.CrossEntropyLoss(reduction=reduction),
            data_loader=loader,
            noise_multiplier=0.0,
            max_grad_norm=clip,
            loss_reduction=reduction,
            grad_sample_mode="ghost",
            poisson_sampling=False,  # we feed our own batch; the loader is not iterated
        )
        assert type(module).__name__ == "GradSampleModuleFastGradientClipping"
        assert type(dp_optimizer).__name__ == "DPOptimizerFastGradientClipping"
        loss = criterion(module(ids), labels)
        loss.backward()
        after_backward = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
        dp_optimizer.step()
    # Undo opacus' scaling: with "mean", step() divided p.grad by the expected batch size
    # (len(dataset) / len(loader) = len(ids) here); with "sum" it divided by nothing.
    divisor = dp_optimizer.expected_batch_size if reduction == "mean" else 1
    if reduction == "mean":
        assert divisor == len(ids)
    stepped = {n: p.grad.detach() * divisor for n, p in model.named_parameters()}
    for name, value in after_backward.items():  # noise 0: step() only rescaled the sum
        torch.testing.assert_close(stepped[name], value, msg=name)
    return after_backward, module.per_sample_gradient_norms.detach()


@pytest.mark.parametrize(
    ("dtype", "rtol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)], ids=["f64", "f32"]
)
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bk_clipped_sum_matches_opacus_ghost_clipping(dtype, rtol, reduction) -> None:
    model = make_model(seed=3, dtype=dtype)
    ids, labels = make_data(9, seed=3)
    batch = {"ids": ids, "y": labels}
    params = dict(model.named_parameters())
    per_sample = functorch_per_sample(model, batch)
    norms = per_sample_norms(per_sample)
    clip = middle_clip(norms)

    with create_backend("bk", module=model, loss_fn=loss_fn, params=params) as bk:
        got = bk.clipped_sum(batch, clip_norm=clip)
        bk_norms = per_sample_norms(bk.compute(batch))
    functorch_sum = clip_and_sum(per_sample, clip_norm=clip)
    opacus_sum, opacus_norms = opacus_ghost_sum(model, ids, labels, clip=clip, reduction=reduction)

    torch.testing.assert_close(opacus_norms, norms, rtol=rtol, atol=0.0)
    torch.testing.assert_close(bk_norms, norms, rtol=rtol, atol=0.0)
    unclipped = {n: g.sum(dim=0) for n, g in per_sample.items()}
    assert set(got) == set(opacus_sum) == set(functorch_sum) == set(params)
    for name, param in params.items():
        assert got[name].shape == param.shape and got[name].dtype == dtype, name
        assert relative_error(got[name], opacus_sum[name]) <= rtol, name
        assert relative_error(got[name], functorch_sum[name]) <= rtol, name
        assert relative_error(opacus_sum[name], functorch_sum[name]) <= rtol, name
    # The clip norm is active: the clipped sum is far from the plain sum, so a backend that
    # skipped clipping (or clipped every example) would fail the comparison above.
    assert max(relative_error(got[n], unclipped[n]) for n in params) > 1e-2
    assert all(p.grad is None for p in model.parameters())  # bk left no gradients behind


def test_bk_matches_opacus_ghost_when_nothing_is_clipped() -> None:
    model = make_model(seed=4, dtype=torch.float64)
    ids, labels = make_data(7, seed=4)
    batch = {"ids": ids, "y": labels}
    with create_backend(
        "bk", module=model, loss_fn=loss_fn, params=dict(model.named_parameters())
    ) as bk:
        got = bk.clipped_sum(batch, clip_norm=1e6)
    opacus_sum, _ = opacus_ghost_sum(model, ids, labels, clip=1e6, reduction="sum")
    plain = torch.autograd.grad(loss_fn(model, batch).sum(), list(model.parameters()))
    for (name, _), value in zip(model.named_parameters(), plain):
        assert relative_error(got[name], value) <= 1e-10, name
        assert relative_error(opacus_sum[name], value) <= 1e-10, name


# -- one engine step against opacus DPOptimizer ------------------------------------------------

N, EXPECTED_BATCH, SIGMA, LR, GUARD_SEED = 24, 8, 0.9, 0.3, 3  # seed 3 draws 10 of 24
BUDGET = PrivacyBudget.private(8.0, 1e-3)


class Records:
    """Token records that remember their row in the dataset (so ``collate`` can report it)."""

    def __init__(self, ids: np.ndarray, labels: np.ndarray, rows: np.ndarray) -> None:
        self.ids, self.labels, self.rows = ids, labels, rows

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, indices: np.ndarray) -> Records:
        indices = np.asarray(indices, dtype=np.int64)
        return Records(self.ids[indices], self.labels[indices], self.rows[indices])


class FixedNoise:
    """Known standard normals, one tensor per parameter (in ``named_parameters`` order), times
    whatever std the caller asks for; records the stds asked for."""

    def __init__(self, model: nn.Module, seed: int) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.units = [
            torch.randn(p.shape, generator=generator, dtype=p.dtype) for p in model.parameters()
        ]
        self.engine_stds: list[float] = []
        self.opacus_stds: list[float] = []
        self._opacus_calls = 0

    def engine(self, guard, like, *, std: float) -> list[torch.Tensor]:
        # isoeps.privacy.engine.gaussian_noise(guard, like, *, std): one tensor per `like`.
        assert [t.shape for t in like] == [u.shape for u in self.units]
        self.engine_stds.append(std)
        return [std * u.clone() for u in self.units]

    def opacus(self, std, reference, generator=None, secure_mode=False) -> torch.Tensor:
        # opacus.optimizers.optimizer._generate_noise: called once per parameter, in order.
        unit = self.units[self._opacus_calls]
        self._opacus_calls += 1
        assert reference.shape == unit.shape
        self.opacus_stds.append(std)
        return std * unit.clone()


def engine_step(monkeypatch, model, records, *, clip, backend, physical, noise):
    drawn: list[np.ndarray] = []

    def collate(chunk: Records, rngs) -> dict[str, torch.Tensor]:
        assert len(rngs) == len(chunk)
        drawn.append(chunk.rows.copy())
        return {"ids": torch.from_numpy(chunk.ids), "y": torch.from_numpy(chunk.labels)}

    # sigma is an input of both mechanisms here; its calibration is tested in test_engine_dpsgd.
    monkeypatch.setattr(engine_module, "calibrate", lambda **kwargs: SIGMA)
    monkeypatch.setattr(engine_module, "gaussian_noise", noise.engine)
    guard = PrivateData(records, seed=GUARD_SEED)
    report = train_dp_sgd(
        guard=guard,
        module=model,
        loss_fn=loss_fn,
        collate=collate,
        config=DPSGDConfig(
            clip_norm=clip,
            expected_batch_size=EXPECTED_BATCH,
            steps=1,
            learning_rate=LR,
            optimizer="sgd",
            max_physical_batch_size=physical,
            backend=backend,
        ),
        budget=BUDGET,
        show_progress=False,
        accountants=["prv"],
    )
    assert report.steps_done == 1 and report.plan.noise_multiplier == SIGMA
    assert guard.ledger.entries == (SubsampledGaussian(SIGMA, EXPECTED_BATCH / N, 1),)
    rows = np.concatenate(drawn) if drawn else np.zeros(0, dtype=np.int64)
    return rows, report.plan.sample_rate * len(guard)


def opacus_step(monkeypatch, model, ids, labels, *, clip, divisor, noise) -> None:
    model.train()  # opacus hooks record activations in training mode only (no dropout here)
    monkeypatch.setattr(opacus_optimizer, "_generate_noise", noise.opacus)
    module = GradSampleModule(model, batch_first=True, loss_reduction="mean")
    # The divisor: DPOptimizer.scale_grad divides by expected_batch_size only when
    # loss_reduction="mean" (with "sum" it is a no-op and the divisor would be 1), so "mean"
    # with expected_batch_size = q N is what reproduces isoeps' constant division by q N. The
    # GradSampleModule's "mean" multiplies the backprops by the realised batch size, so the
    # per-sample gradients are those of the per-example losses, as in isoeps.
    optimizer = DPOptimizer(
        torch.optim.SGD(model.parameters(), lr=LR),
        noise_multiplier=SIGMA,
        max_grad_norm=clip,
        expected_batch_size=divisor,
        loss_reduction="mean",
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        loss_fn(module, {"ids": ids, "y": labels}).mean().backward()
        optimizer.step()
    module._close()


@pytest.mark.parametrize(
    ("backend", "physical"), [("bk", 3), ("functorch", 64), ("opacus", 4)], ids=str
)
def test_engine_step_matches_opacus_dp_optimizer(monkeypatch, backend, physical) -> None:
    start = make_model(seed=7, dtype=torch.float64)
    ids, labels = make_data(N, seed=7)
    records = Records(ids.numpy(), labels.numpy(), np.arange(N))
    clip = middle_clip(per_sample_norms(functorch_per_sample(start, {"ids": ids, "y": labels})))
    noise = FixedNoise(start, seed=11)

    ours = copy.deepcopy(start)
    rows, divisor = engine_step(
        monkeypatch, ours, records, clip=clip, backend=backend, physical=physical, noise=noise
    )
    # The guard's Poisson batch: distinct rows, several physical chunks, clipped and unclipped.
    assert len(rows) == len(set(rows.tolist()))
    assert physical == 64 or len(rows) > physical
    batch = {"ids": ids[rows], "y": labels[rows]}
    drawn_norms = per_sample_norms(functorch_per_sample(start, batch))
    assert (drawn_norms > clip).any() and (drawn_norms < clip).any()
    assert divisor == pytest.approx(EXPECTED_BATCH) and divisor != len(rows)

    theirs = copy.deepcopy(start)
    opacus_step(
        monkeypatch, theirs, batch["ids"], batch["y"], clip=clip, divisor=divisor, noise=noise
    )

    assert noise.engine_stds == pytest.approx([SIGMA * clip])
    assert noise.opacus_stds == pytest.approx([SIGMA * clip] * len(noise.units))
    expected = {n: p.detach() for n, p in theirs.named_parameters()}
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.detach(), expected[name], rtol=1e-10, atol=1e-12, msg=name)
    # The comparison can fail: the fixed noise moves the update visibly (and the drawn batch
    # has clipped examples, checked above); the step is (clipped sum + noise) / (q N) exactly.
    clipped = clip_and_sum(functorch_per_sample(start, batch), clip_norm=clip)
    for (name, p0), unit in zip(start.named_parameters(), noise.units):
        step = expected[name] - p0.detach()
        without_noise = -LR * clipped[name] / divisor
        assert relative_error(step, without_noise) > 1e-2, name
        torch.testing.assert_close(
            step, -LR * (clipped[name] + SIGMA * clip * unit) / divisor, msg=name
        )
