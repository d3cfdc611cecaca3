"""Book-keeping ("ghost") clipping: clipped per-sample gradient sums without per-sample gradients.

For a Linear layer applied to activations ``a`` ``(B, T, d_in)`` with output gradients ``g``
``(B, T, d_out)``, example i's weight gradient is ``sum_t g_it a_it^T`` and its squared norm is
``<a_i a_i^T, g_i g_i^T>``: two ``(T, T)`` Gram matrices, far cheaper than the ``(d_out, d_in)``
gradient when T is small (Li et al. 2022, "ghost clipping"). Once every example's global norm is
known, the clipped sum is one GEMM per layer on output gradients scaled by the per-example clip
factors (Bu et al. 2023, "book-keeping"). So a step costs one forward, one backward that computes
activation gradients only, the Gram matrices and the usual weight-gradient GEMMs.

Supported trainable layers, exactly: ``nn.Linear``, ``nn.Embedding`` (no ``sparse`` or
``scale_grad_by_freq``) and ``nn.LayerNorm``. :class:`LayerCapture` refuses any other module
that owns a trainable parameter, and a parameter shared by two modules, with a ``ValueError``
naming it; use the ``functorch`` backend for such models.

Assumptions, the same as opacus hooks: the first dimension of every hooked layer's input and
output is the batch (``(B * T, d)`` reshapes are detected and refused), examples do not interact
(no BatchNorm), and trainable parameters are used only through their module's ``forward`` (a
weight read directly, e.g. ``x @ layer.weight``, is invisible to the hooks). A module called
several times in one forward is fine: its calls are joined along the token axis.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class _Rule:
    """What a layer type needs: per-sample squared norms, per-sample gradients, weighted sums.

    ``x`` and ``g`` are the layer's inputs and output gradients of all calls, each flattened to
    ``(B, T, ...)`` and joined along T. ``wanted`` holds the local names of the trainable
    parameters (``weight``, ``bias``). ``cache`` is per batch, shared between the three calls.
    """

    layer: ClassVar[type[nn.Module]]

    def check(self, module: nn.Module, path: str) -> None:
        """Raise ``ValueError`` when ``module`` uses an option the rule cannot handle."""

    def flatten(self, module: nn.Module, x: Tensor, g: Tensor) -> tuple[Tensor, Tensor]:
        raise NotImplementedError

    def sq_norms(self, module: nn.Module, x: Tensor, g: Tensor, wanted: set[str], cache: dict):
        raise NotImplementedError

    def per_sample(self, module: nn.Module, x: Tensor, g: Tensor, wanted: set[str], cache: dict):
        raise NotImplementedError

    def weighted(
        self, module: nn.Module, x: Tensor, g: Tensor, wanted: set[str], cache: dict, scale: Tensor
    ) -> dict[str, Tensor]:
        raise NotImplementedError


def _gram(z: Tensor) -> Tensor:
    return torch.bmm(z, z.transpose(1, 2))


class _LinearRule(_Rule):
    layer = nn.Linear

    def flatten(self, module, x, g):
        return x.reshape(x.shape[0], -1, x.shape[-1]), g.reshape(g.shape[0], -1, g.shape[-1])

    def sq_norms(self, module, x, g, wanted, cache):
        total = torch.zeros(x.shape[0], dtype=g.dtype, device=g.device)
        if "weight" in wanted:
            t, d_in, d_out = x.shape[1], x.shape[2], g.shape[2]
            # Gram matrices cost B T^2 (d_in + d_out), the explicit gradient B T d_in d_out.
            if t * (d_in + d_out) < d_in * d_out:
                total += torch.einsum("bij,bij->b", _gram(x), _gram(g))
            else:
                total += torch.linalg.vector_norm(self._weight(x, g).flatten(1), dim=1).square()
        if "bias" in wanted:
            cache["bias"] = g.sum(dim=1)
            total += cache["bias"].square().sum(dim=1)
        return total

    @staticmethod
    def _weight(x: Tensor, g: Tensor) -> Tensor:
        return torch.bmm(g.transpose(1, 2), x)

    def per_sample(self, module, x, g, wanted, cache):
        grads = {}
        if "weight" in wanted:
            grads["weight"] = self._weight(x, g)
        if "bias" in wanted:
            grads["bias"] = g.sum(dim=1)
        return grads

    def weighted(self, module, x, g, wanted, cache, scale):
        sums = {}
        if "weight" in wanted:
            # Scale the narrower of the two operands.
            if x.shape[2] < g.shape[2]:
                x = x * scale[:, None, None]
            else:
                g = g * scale[:, None, None]
            sums["weight"] = g.flatten(0, 1).T @ x.flatten(0, 1)
        if "bias" in wanted:
            sums["bias"] = scale @ cache["bias"]
        return sums


class _EmbeddingRule(_Rule):
    layer = nn.Embedding

    def check(self, module, path):
        for option in ("sparse", "scale_grad_by_freq"):
            if getattr(module, option):
                raise ValueError(
                    f"book-keeping clipping does not support nn.Embedding({option}=True) at "
                    f"{path!r}; use the functorch backend"
                )

    def flatten(self, module, x, g):
        ids = x.reshape(x.shape[0], -1)
        g = g.reshape(g.shape[0], -1, g.shape[-1])
        if module.padding_idx is not None:
            # The padding row gets no gradient.
            g = g * (ids != module.padding_idx).unsqueeze(-1).to(g.dtype)
        return ids, g

    def sq_norms(self, module, x, g, wanted, cache):
        # Rows hit by several tokens add up: ||G_i||^2 = sum_{t,t'} [id_t = id_t'] <g_t, g_t'>.
        same = (x.unsqueeze(2) == x.unsqueeze(1)).to(g.dtype)
        return torch.einsum("bij,bij->b", _gram(g), same)

    def per_sample(self, module, x, g, wanted, cache):
        b, rows = x.shape[0], module.num_embeddings
        flat_ids = (x + rows * torch.arange(b, device=x.device).unsqueeze(1)).reshape(-1)
        grads = torch.zeros(b * rows, g.shape[-1], dtype=g.dtype, device=g.device)
        grads.index_add_(0, flat_ids, g.reshape(-1, g.shape[-1]))
        return {"weight": grads.view(b, rows, -1)}

    def weighted(self, module, x, g, wanted, cache, scale):
        total = torch.zeros(module.num_embeddings, g.shape[-1], dtype=g.dtype, device=g.device)
        scaled = (g * scale[:, None, None]).reshape(-1, g.shape[-1])
        return {"weight": total.index_add_(0, x.reshape(-1), scaled)}


class _LayerNormRule(_Rule):
    layer = nn.LayerNorm

    def flatten(self, module, x, g):
        shape = module.normalized_shape
        normed = F.layer_norm(x, shape, eps=module.eps)
        width = math.prod(shape)
        return normed.reshape(x.shape[0], -1, width), g.reshape(g.shape[0], -1, width)

    def per_sample(self, module, x, g, wanted, cache):
        if "grads" not in cache:
            shape = module.normalized_shape
            grads = {}
            if "weight" in wanted:
                grads["weight"] = (g * x).sum(dim=1).reshape(-1, *shape)
            if "bias" in wanted:
                grads["bias"] = g.sum(dim=1).reshape(-1, *shape)
            cache["grads"] = grads
        return cache["grads"]

    def sq_norms(self, module, x, g, wanted, cache):
        grads = self.per_sample(module, x, g, wanted, cache)
        return sum(v.flatten(1).square().sum(dim=1) for v in grads.values())

    def weighted(self, module, x, g, wanted, cache, scale):
        grads = self.per_sample(module, x, g, wanted, cache)
        return {name: torch.tensordot(scale, v, dims=([0], [0])) for name, v in grads.items()}


RULES: dict[type[nn.Module], _Rule] = {
    rule.layer: rule for rule in (_LinearRule(), _EmbeddingRule(), _LayerNormRule())
}


@dataclass
class _Layer:
    path: str
    module: nn.Module
    rule: _Rule
    #: local parameter name (``weight``/``bias``) -> the caller's full name
    names: dict[str, str]


@dataclass
class Activations:
    """One layer's inputs and output gradients for one batch (all calls joined along T)."""

    layer: _Layer
    x: Tensor | None
    g: Tensor | None
    cache: dict = field(default_factory=dict)

    def sq_norms(self) -> Tensor | None:
        if self.x is None:
            return None
        return self.layer.rule.sq_norms(
            self.layer.module, self.x, self.g, set(self.layer.names), self.cache
        )

    def per_sample(self, size: int) -> dict[str, Tensor]:
        if self.x is None:
            return self._zeros(size)
        grads = self.layer.rule.per_sample(
            self.layer.module, self.x, self.g, set(self.layer.names), self.cache
        )
        return {self.layer.names[local]: value for local, value in grads.items()}

    def weighted(self, scale: Tensor) -> dict[str, Tensor]:
        if self.x is None:
            return {full: torch.zeros_like(p) for full, p in self._params().items()}
        sums = self.layer.rule.weighted(
            self.layer.module, self.x, self.g, set(self.layer.names), self.cache, scale
        )
        return {self.layer.names[local]: value for local, value in sums.items()}

    def _params(self) -> dict[str, Tensor]:
        return {full: getattr(self.layer.module, local) for local, full in self.layer.names.items()}

    def _zeros(self, size: int) -> dict[str, Tensor]:
        return {
            full: p.new_zeros(size, *p.shape, requires_grad=False)
            for full, p in self._params().items()
        }


class LayerCapture:
    """Finds the layers that own ``params`` and records their activations for one batch.

    ``params`` maps full names (as in ``module.named_parameters()``) to trainable parameters.
    Raises ``ValueError`` for a trainable parameter owned by an unsupported layer type or by
    more than one module.
    """

    def __init__(self, *, module: nn.Module, params: Mapping[str, nn.Parameter]) -> None:
        by_id = {id(p): name for name, p in params.items()}
        owners: dict[int, list[str]] = {}
        layers = []
        for path, sub in module.named_modules():
            names = {}
            for local, p in sub.named_parameters(recurse=False):
                if id(p) not in by_id:
                    continue
                owners.setdefault(id(p), []).append(f"{path}.{local}" if path else local)
                names[local] = by_id[id(p)]
            if not names:
                continue
            rule = RULES.get(type(sub))
            if rule is None:
                supported = ", ".join(f"nn.{t.__name__}" for t in RULES)
                raise ValueError(
                    f"book-keeping clipping has no rule for {type(sub).__name__} at "
                    f"{path or '<root>'!r}, which owns trainable {sorted(names)}; it supports "
                    f"{supported} only: use the functorch backend for this model"
                )
            rule.check(sub, path)
            layers.append(_Layer(path=path, module=sub, rule=rule, names=names))
        shared = {by_id[i]: where for i, where in owners.items() if len(where) > 1}
        if shared:
            raise ValueError(
                f"book-keeping clipping cannot handle parameters shared between modules: {shared}; "
                "use the functorch backend"
            )
        self._layers = layers

    def run(self, forward: Callable[[], Tensor], *, size: int) -> list[Activations]:
        """Call ``forward()`` (per-example losses of shape ``(size,)``) with hooks on, then
        backpropagate ``losses.sum()`` to the hooked layers' outputs only (no weight
        gradients are computed).

        Args:
            forward: computes the per-example losses of the batch.
            size: the batch size B; every hooked layer's input and output must have it first.

        Returns:
            One :class:`Activations` per captured layer, in layer order (``x`` and ``g`` None for
            a layer the forward pass did not reach).

        Raises:
            ValueError: a hooked layer saw a tensor whose first dimension is not ``size``, or its
                output was modified in place after it ran.
        """
        calls: list[list[tuple[Tensor, Tensor, int]]] = [[] for _ in self._layers]

        def hook(index: int):
            layer = self._layers[index]

            def record(sub: nn.Module, args: tuple, kwargs: dict, output: Tensor) -> None:
                x = args[0] if args else kwargs["input"]
                for what, tensor in (("input", x), ("output", output)):
                    if tensor.ndim == 0 or tensor.shape[0] != size:
                        raise ValueError(
                            f"book-keeping clipping needs the batch first: {layer.path!r} got "
                            f"an {what} of shape {tuple(tensor.shape)} for a batch of {size}"
                        )
                calls[index].append((x.detach(), output, output._version))

            return record

        handles = [
            layer.module.register_forward_hook(hook(i), with_kwargs=True)
            for i, layer in enumerate(self._layers)
        ]
        try:
            losses = forward()
        finally:
            for handle in handles:
                handle.remove()
        outputs = []
        for layer, recorded in zip(self._layers, calls):
            for _, output, version in recorded:
                if output._version != version:
                    raise ValueError(
                        f"the output of {layer.path!r} was modified in place after the layer "
                        "ran; book-keeping clipping needs it intact (use the functorch backend)"
                    )
                outputs.append(output)
        if outputs and losses.requires_grad:
            grads = iter(torch.autograd.grad(losses.sum(), outputs, allow_unused=True))
        else:  # no hooked layer reached the loss: every per-sample gradient is zero
            grads = iter([None] * len(outputs))
        captured = []
        for layer, recorded in zip(self._layers, calls):
            if not recorded:
                captured.append(Activations(layer=layer, x=None, g=None))
                continue
            xs, gs = [], []
            for x, output, _ in recorded:
                g = next(grads)
                x, g = layer.rule.flatten(
                    layer.module, x, torch.zeros_like(output) if g is None else g
                )
                xs.append(x)
                gs.append(g)
            x, g = (xs[0], gs[0]) if len(xs) == 1 else (torch.cat(xs, 1), torch.cat(gs, 1))
            captured.append(Activations(layer=layer, x=x, g=g))
        return captured


def sq_norms(activations: list[Activations], *, size: int, like: Tensor) -> Tensor:
    """Per-example squared global gradient norms over every captured layer, ``(size,)``.

    Args:
        activations: what :meth:`LayerCapture.run` captured.
        size: the batch size B.
        like: a tensor whose dtype and device the result takes.

    Returns:
        The squared norms, float ``(size,)``.
    """
    total = torch.zeros(size, dtype=like.dtype, device=like.device)
    for item in activations:
        value = item.sq_norms()
        if value is not None:
            total += value
    return total
