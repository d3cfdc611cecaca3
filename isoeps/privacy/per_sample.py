"""Per-sample gradients behind one interface, and per-sample clipping.

Three backends compute the gradient of each example's loss with respect to the trainable
parameters, as tensors of shape ``(B, *param.shape)``, and the sum of those gradients clipped
per example (:meth:`PerSampleGradients.clipped_sum`, what the DP-SGD engine uses):

- ``functorch``: ``torch.func.functional_call`` + ``vmap`` + ``grad``, the loss evaluated on
  one example at a time (a batch of size 1). The fastest on CPU for our models.
- ``opacus``: opacus ``GradSampleModule`` hooks (Linear, LayerNorm, Embedding, Conv, GroupNorm
  have per-sample rules; other layers with their own parameters fall back to opacus' functorch).
- ``bk``: book-keeping ("ghost") clipping (:mod:`isoeps.privacy.ghost_clipping`). Its
  ``clipped_sum`` never materialises per-sample gradients: per-example norms come from
  activations and output gradients, the clipped sum from one GEMM per layer. Trainable
  parameters must live in ``nn.Linear``, ``nn.Embedding`` or ``nn.LayerNorm`` layers (any other
  owner is refused with a ``ValueError`` naming it). The fastest for our transformer.

Model rules that every backend needs (:mod:`isoeps.models.ar_transformer` follows them):
attention written as matmul + softmax (``scaled_dot_product_attention`` has no CPU vmap rule
for its backward, and opacus rejects ``nn.MultiheadAttention``), position ids expanded to
``(B, T)``, no BatchNorm.

The loss is ``loss_fn(module, batch) -> (B,)`` per-example losses, where ``batch`` maps names to
tensors whose first dimension is the batch. Randomness the loss needs (diffusion noise, time
steps) is best drawn in ``collate`` so that both backends see the same values.
"""

from __future__ import annotations

import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from torch import Tensor, nn

from isoeps.privacy.ghost_clipping import LayerCapture, sq_norms

if TYPE_CHECKING:
    from typing_extensions import Self

LossFn = Callable[[nn.Module, dict[str, Tensor]], Tensor]
Batch = dict[str, Tensor]

#: Added to per-sample norms before dividing, as opacus does; keeps the bound strict.
CLIP_EPS = 1e-6


class _LossModule(nn.Module):
    """``forward(batch) = loss_fn(module, batch)``: one module to reparametrize or hook."""

    def __init__(self, module: nn.Module, loss_fn: LossFn) -> None:
        super().__init__()
        self.module = module
        self.loss_fn = loss_fn

    def forward(self, batch: Batch) -> Tensor:
        return self.loss_fn(self.module, batch)


def batch_size(batch: Mapping[str, Any]) -> int:
    """The common first dimension of a batch's tensors (a clear error otherwise)."""
    if not batch:
        raise ValueError("collate returned an empty dict; it must map names to batched tensors")
    sizes = {}
    for key, value in batch.items():
        if not isinstance(value, Tensor) or value.ndim == 0:
            raise ValueError(
                f"collate must return tensors with a batch dimension; {key!r} is {type(value)!r}"
                + (f" of shape {tuple(value.shape)}" if isinstance(value, Tensor) else "")
            )
        sizes[key] = value.shape[0]
    if len(set(sizes.values())) != 1:
        raise ValueError(f"collate returned tensors with different batch sizes: {sizes}")
    return next(iter(sizes.values()))


def check_losses(losses: Tensor, size: int) -> None:
    """Check that ``loss_fn`` returned per-example losses, one per record of the batch.

    Args:
        losses: what ``loss_fn`` returned.
        size: the batch size B.

    Raises:
        ValueError: ``losses`` is not a tensor of shape ``(size,)``.
    """
    if not isinstance(losses, Tensor) or tuple(losses.shape) != (size,):
        shape = tuple(losses.shape) if isinstance(losses, Tensor) else type(losses)
        raise ValueError(
            f"loss_fn must return per-example losses of shape ({size},), got {shape}; "
            "do not reduce over the batch"
        )


class PerSampleGradients(ABC):
    """Per-sample gradients of ``loss_fn`` for the parameters in ``params``.

    ``params`` maps names (as in ``module.named_parameters()``) to the trainable parameters;
    every other parameter is treated as a constant. Use as a context manager, or call
    :meth:`close`, so that hooks are removed.
    """

    name: ClassVar[str]

    def __init__(
        self, *, module: nn.Module, loss_fn: LossFn, params: Mapping[str, nn.Parameter]
    ) -> None:
        if not params:
            raise ValueError("no trainable parameters: nothing to differentiate")
        self._module = module
        self._loss_fn = loss_fn
        self._params = dict(params)

    @classmethod
    def check(cls, *, module: nn.Module, params: Mapping[str, nn.Parameter]) -> None:
        """Raise ``ValueError`` if this backend cannot handle ``module`` (cheap; no batch).

        Args:
            module: the model.
            params: the trainable parameters, by full name.
        """

    @abstractmethod
    def compute(self, batch: Batch) -> dict[str, Tensor]:
        """``{name: (B, *shape)}`` per-sample gradients for a non-empty batch."""

    def clipped_sum(self, batch: Batch, *, clip_norm: float) -> dict[str, Tensor]:
        """``{name: shape}``: the sum over the batch of per-sample gradients, each example's
        clipped to global L2 norm at most ``clip_norm`` (as :func:`clip_and_sum`).

        Args:
            batch: a non-empty batch of tensors, as ``collate`` returns.
            clip_norm: C, the per-example L2 bound.

        Returns:
            One summed gradient per trainable parameter name.
        """
        return clip_and_sum(self.compute(batch), clip_norm=clip_norm)

    def close(self) -> None:
        """Release hooks or caches. Idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FunctorchGradients(PerSampleGradients):
    """``vmap(grad(loss of one example))`` over the batch, through ``functional_call``."""

    name = "functorch"

    def __init__(
        self, *, module: nn.Module, loss_fn: LossFn, params: Mapping[str, nn.Parameter]
    ) -> None:
        super().__init__(module=module, loss_fn=loss_fn, params=params)
        self._wrapper = _LossModule(module, loss_fn)

    def _example_loss(self, params: dict[str, Tensor], example: Batch) -> Tensor:
        single = {key: value.unsqueeze(0) for key, value in example.items()}
        losses = torch.func.functional_call(self._wrapper, params, (single,), strict=False)
        check_losses(losses, 1)
        return losses.sum()

    def compute(self, batch: Batch) -> dict[str, Tensor]:
        batch_size(batch)
        params = {f"module.{name}": p.detach() for name, p in self._params.items()}
        # "different": a loss that draws noise itself gets independent draws per example.
        per_sample = torch.func.vmap(
            torch.func.grad(self._example_loss), in_dims=(None, 0), randomness="different"
        )(params, batch)
        return {name: per_sample[f"module.{name}"] for name in self._params}


class OpacusGradients(PerSampleGradients):
    """opacus ``GradSampleModule`` hooks (``loss_reduction="sum"``)."""

    name = "opacus"

    def __init__(
        self, *, module: nn.Module, loss_fn: LossFn, params: Mapping[str, nn.Parameter]
    ) -> None:
        super().__init__(module=module, loss_fn=loss_fn, params=params)
        from opacus import GradSampleModule

        wanted = {id(p) for p in self._params.values()}
        stray = [n for n, p in module.named_parameters() if p.requires_grad and id(p) not in wanted]
        if stray:
            # opacus differentiates every parameter that requires grad; the engine freezes the
            # others first, so this is a caller bug.
            raise ValueError(f"parameters outside the trainable set require grad: {stray[:5]}")
        self._gsm = GradSampleModule(
            _LossModule(module, loss_fn), batch_first=True, loss_reduction="sum", strict=False
        )
        # opacus records activations only for modules in training mode. The engine keeps the
        # model in eval mode (frozen VQ-EMA codebooks must not update), so only the modules that
        # own trainable parameters are flipped to training, one module at a time, per call.
        self._hooked = [
            m for m in module.modules() if any(p.requires_grad for p in m.parameters(recurse=False))
        ]
        # Hooks run only inside compute(), so the module stays usable in between.
        self._gsm.disable_hooks()
        self._closed = False

    def compute(self, batch: Batch) -> dict[str, Tensor]:
        size = batch_size(batch)
        flags = [m.training for m in self._hooked]
        try:
            self._gsm.enable_hooks()
            for m in self._hooked:
                m.training = True
            losses = self._gsm(batch)
            check_losses(losses, size)
            with warnings.catch_warnings():
                # Inputs are integer tokens or data: hooks firing on outputs is what we want.
                warnings.filterwarnings("ignore", message="Full backward hook is firing")
                losses.sum().backward()
        finally:
            self._gsm.disable_hooks()
            for m, flag in zip(self._hooked, flags):
                m.training = flag
        grads = {}
        for name, p in self._params.items():
            sample = getattr(p, "grad_sample", None)
            if sample is None:
                raise ValueError(
                    f"opacus computed no per-sample gradient for {name!r}; "
                    "use the functorch backend or a supported layer"
                )
            grads[name] = sample
            p.grad_sample = None
            p.grad = None
        return grads

    def close(self) -> None:
        if not self._closed:
            self._gsm._close()
            self._closed = True


class BookKeepingGradients(PerSampleGradients):
    """Book-keeping clipping: forward hooks on the trainable layers, one backward to their
    outputs, per-example norms from Gram matrices, clipped sum as scaled weight GEMMs."""

    name = "bk"

    def __init__(
        self, *, module: nn.Module, loss_fn: LossFn, params: Mapping[str, nn.Parameter]
    ) -> None:
        super().__init__(module=module, loss_fn=loss_fn, params=params)
        self._capture = LayerCapture(module=module, params=self._params)

    @classmethod
    def check(cls, *, module: nn.Module, params: Mapping[str, nn.Parameter]) -> None:
        """Raise ``ValueError`` if :class:`LayerCapture` cannot cover ``params`` in ``module``.

        Args:
            module: the model.
            params: the trainable parameters, by full name.

        Raises:
            ValueError: a trainable parameter is owned by an unsupported layer type or shared
                between modules.
        """
        LayerCapture(module=module, params=params)

    def _activations(self, batch: Batch) -> tuple[int, list]:
        size = batch_size(batch)

        def forward() -> Tensor:
            losses = self._loss_fn(self._module, batch)
            check_losses(losses, size)
            return losses

        return size, self._capture.run(forward, size=size)

    def compute(self, batch: Batch) -> dict[str, Tensor]:
        size, activations = self._activations(batch)
        grads = {}
        for item in activations:
            grads.update(item.per_sample(size))
        return {name: grads[name] for name in self._params}

    def clipped_sum(self, batch: Batch, *, clip_norm: float) -> dict[str, Tensor]:
        """As :meth:`PerSampleGradients.clipped_sum`, without materialising per-sample gradients.

        Book-keeping: per-example norms from the captured activations and output gradients, then
        one weighted sum per layer. A batch with a non-finite norm takes the per-sample path.

        Args:
            batch: a non-empty batch of tensors, as ``collate`` returns.
            clip_norm: C, the per-example L2 bound.

        Returns:
            One summed gradient per trainable parameter name.
        """
        size, activations = self._activations(batch)
        like = next(iter(self._params.values()))
        norms = sq_norms(activations, size=size, like=like).clamp(min=0).sqrt()
        if not bool(torch.isfinite(norms).all()):
            # A non-finite example: the GEMM trick would spread its inf/NaN into the sum, so
            # take the per-sample path, which zeroes it (see clip_and_sum).
            grads: dict[str, Tensor] = {}
            for item in activations:
                grads.update(item.per_sample(size))
            return clip_and_sum({name: grads[name] for name in self._params}, clip_norm=clip_norm)
        scale = (clip_norm / (norms + CLIP_EPS)).clamp(max=1.0)
        sums = {}
        for item in activations:
            sums.update(item.weighted(scale))
        return {name: sums[name] for name in self._params}


BACKENDS: dict[str, type[PerSampleGradients]] = {
    cls.name: cls for cls in (FunctorchGradients, OpacusGradients, BookKeepingGradients)
}


def create_backend(
    name: str, *, module: nn.Module, loss_fn: LossFn, params: Mapping[str, nn.Parameter]
) -> PerSampleGradients:
    """The per-sample-gradient backend called ``name`` (``functorch``, ``opacus`` or ``bk``).

    Args:
        name: the backend's name.
        module: the model.
        loss_fn: ``loss_fn(module, batch)`` -> per-example losses ``(B,)``.
        params: the trainable parameters, by full name.

    Returns:
        The backend, built over ``module`` and ``params``.

    Raises:
        ValueError: ``name`` is not a known backend, or ``params`` is empty.
    """
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {name!r}")
    return BACKENDS[name](module=module, loss_fn=loss_fn, params=params)


def per_sample_norms(grads: Mapping[str, Tensor]) -> Tensor:
    """The global L2 norm of each example's gradient over all parameters, shape ``(B,)``."""
    # vector_norm reads each gradient once and allocates no (B, P) temporary.
    norms = [torch.linalg.vector_norm(g.reshape(g.shape[0], -1), dim=1) for g in grads.values()]
    return torch.linalg.vector_norm(torch.stack(norms), dim=0)


def _zero_rows(values: Tensor, keep: Tensor) -> Tensor:
    """``values`` with every row (first dimension) where ``keep`` is False set to zero."""
    mask = keep.view(-1, *([1] * (values.dim() - 1)))
    return torch.where(mask, values, torch.zeros((), dtype=values.dtype, device=values.device))


def clip_and_sum(grads: Mapping[str, Tensor], *, clip_norm: float) -> dict[str, Tensor]:
    """Scale each example's gradient to global L2 norm at most ``clip_norm``, then sum.

    The factor is ``min(1, C / (norm + 1e-6))``, as in opacus, so each clipped norm is < C.
    An example whose gradient has any non-finite entry contributes zero (one inf or NaN would
    otherwise make the whole sum NaN and reveal the record); how many did is reported nowhere.

    Args:
        grads: ``{name: (B, *shape)}`` per-sample gradients.
        clip_norm: C, the global L2 bound per example.

    Returns:
        ``{name: shape}``: the clipped sums.
    """
    norms = per_sample_norms(grads)
    finite = torch.isfinite(norms)
    scale = (clip_norm / (norms + CLIP_EPS)).clamp(max=1.0)
    if not bool(finite.all()):
        scale = torch.where(finite, scale, torch.zeros_like(scale))
        grads = {name: _zero_rows(g, finite) for name, g in grads.items()}
    return {
        name: torch.tensordot(scale.to(g.dtype), g, dims=([0], [0])) for name, g in grads.items()
    }
