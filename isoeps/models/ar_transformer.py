"""A decoder-only, scale-causal autoregressive transformer over spectral tokens.

The sequence is ``[text prefix | image positions]``. Image position ``i`` predicts token ``i``
(coarse scales first) and carries as input the embedding of token ``i - 1`` (a learned start
vector at ``i = 0``). The mask lets each image position see the valid text prefix and, causally,
every earlier image position: so a token sees all coarser scales and the earlier tokens of its
own scale, and changing a finer-scale token never changes a coarser token's logits.

Written for per-sample gradients (the model rules of :mod:`isoeps.privacy.per_sample`):
attention is Linear + matmul + softmax (no ``scaled_dot_product_attention``: no vmap rule for
its CPU backward; no ``nn.MultiheadAttention``: opacus rejects it), LayerNorm only, no in-place
ops on inputs, no data-dependent control flow, and every shape is static, so ``loss_fn`` runs
under ``torch.func.vmap`` at batch 1. Each scale has its own token embedding, position embedding,
output norm and head (SIT keeps separate embeddings per scale); attention weights are shared.

Text conditioning is a prefix of projected frozen text-encoder features: either the pooled
sentence embedding (``(B, 1, text_dim)`` expanded to ``prefix_len`` slots) or the token states
(``(B, T, text_dim)``). A row whose ``text_mask`` is all False is unconditional, which gives
classifier-free guidance for free.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

NEG = -1e9  # additive mask value; finite so fully masked rows never produce NaN


@dataclass(frozen=True)
class ARConfig:
    """Model sizes. ``vocab_sizes``/``tokens_per_scale`` come from the tokenizer."""

    vocab_sizes: tuple[int, ...]
    tokens_per_scale: int
    text_dim: int = 384
    text_mode: str = "pooled"  # "pooled" | "tokens"
    prefix_len: int = 4  # prefix slots in "pooled" mode
    dim: int = 128
    depth: int = 4
    heads: int = 4
    mlp_ratio: int = 4

    def __post_init__(self) -> None:
        if self.text_mode not in ("pooled", "tokens"):
            raise ValueError(f"text_mode must be 'pooled' or 'tokens', got {self.text_mode!r}")
        if self.dim % self.heads:
            raise ValueError(f"dim={self.dim} is not divisible by heads={self.heads}")

    @property
    def num_scales(self) -> int:
        return len(self.vocab_sizes)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self, x: torch.Tensor, bias: torch.Tensor, past: tuple | None = None
    ) -> tuple[torch.Tensor, tuple]:
        """``x`` (B, T, D); ``bias`` (B, 1, T, T_total) additive. ``past`` holds cached keys
        and values (sampling only); returns the output and the keys/values so far.

        Args:
            x: the input ``(B, T, D)``.
            bias: the additive attention bias ``(B, 1, T, T_total)``.
            past: ``(keys, values)`` from earlier positions; None for none.

        Returns:
            ``(output, (keys, values))``; the output is ``(B, T, D)``.
        """
        b, t, d = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        if past is not None:
            k = torch.cat([past[0], k], dim=2)
            v = torch.cat([past[1], v], dim=2)
        scores = q @ k.transpose(-2, -1) * (d // self.heads) ** -0.5 + bias
        y = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(b, t, d)
        return self.out(y), (k, v)


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim)
        )

    def forward(
        self, x: torch.Tensor, bias: torch.Tensor, past: tuple | None = None
    ) -> tuple[torch.Tensor, tuple]:
        """Pre-norm attention then MLP, each residual; ``past`` as in :meth:`Attention.forward`.

        Args:
            x: the input ``(B, T, D)``.
            bias: the additive attention bias ``(B, 1, T, T_total)``.
            past: cached ``(keys, values)``; None for none.

        Returns:
            ``(output, (keys, values))``.
        """
        h, present = self.attn(self.norm1(x), bias, past)
        x = x + h
        return x + self.mlp(self.norm2(x)), present


class ScaleCausalTransformer(nn.Module):
    """See the module docstring. Parameters of scale ``s`` are named ``*.<s>`` under
    ``embed``, ``pos``, ``head_norm`` and ``head`` (see :meth:`scale_parameter_names`)."""

    def __init__(self, config: ARConfig) -> None:
        super().__init__()
        self.config = config
        d = config.dim
        self.embed = nn.ModuleList(nn.Embedding(v, d) for v in config.vocab_sizes)
        # Position tables are embeddings looked up with ids expanded to (B, T): per-sample
        # gradient hooks (opacus) need a batched input for every parameter.
        self.pos = nn.ModuleList(
            nn.Embedding(config.tokens_per_scale, d) for _ in config.vocab_sizes
        )
        self.start = nn.Embedding(1, d)
        slots = config.prefix_len if config.text_mode == "pooled" else 1
        self.text_proj = nn.Linear(config.text_dim, slots * d)
        self.text_pos = nn.Embedding(slots, d)
        self.blocks = nn.ModuleList(
            Block(d, config.heads, config.mlp_ratio) for _ in range(config.depth)
        )
        self.head_norm = nn.ModuleList(nn.LayerNorm(d) for _ in config.vocab_sizes)
        self.head = nn.ModuleList(nn.Linear(d, v) for v in config.vocab_sizes)
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, std=0.02)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)

    def metadata(self) -> dict[str, object]:
        config = asdict(self.config)
        config["vocab_sizes"] = list(config["vocab_sizes"])
        return config

    def scale_parameter_names(self, scales: range | list[int]) -> list[str]:
        """Names of every parameter a forward over ``scales`` uses (shared ones included)."""
        wanted = set(scales)
        names = []
        for name, _ in self.named_parameters():
            parts = name.split(".")
            # Per-scale tables; embed.<s> feeds the positions after scale s's tokens, which
            # (the wanted scales being a coarse-first prefix) lie in s or s + 1.
            if parts[0] in ("embed", "pos", "head_norm", "head") and int(parts[1]) not in wanted:
                continue
            names.append(name)
        return names

    # -- building the sequence ------------------------------------------------------------------
    def text_prefix(self, text: torch.Tensor, text_mask: torch.Tensor) -> tuple:
        """-> prefix ``(B, P, D)`` and its key mask ``(B, P)``.

        Args:
            text: the text features ``(B, 1, dim)`` (``pooled``) or ``(B, L, dim)`` (``tokens``).
            text_mask: their mask ``(B, 1)`` or ``(B, L)``.

        Returns:
            ``(prefix, mask)``; ``P`` is ``prefix_len`` for ``pooled``, L for ``tokens``.
        """
        b = text.shape[0]
        if self.config.text_mode == "pooled":
            prefix = self.text_proj(text[:, 0]).reshape(b, self.config.prefix_len, -1)
            mask = text_mask[:, :1].expand(b, self.config.prefix_len)
            return prefix + self.text_pos(_ids(b, 0, self.config.prefix_len, text.device)), mask
        prefix = self.text_proj(text)
        return prefix + self.text_pos(_ids(b, 0, 1, text.device)), text_mask

    def image_inputs(self, tokens: torch.Tensor) -> torch.Tensor:
        """tokens ``(B, T)`` -> inputs ``(B, T, D)``: start vector, then shifted embeddings."""
        b, t = tokens.shape
        per = self.config.tokens_per_scale
        embedded = [self.embed[s](tokens[:, s * per : (s + 1) * per]) for s in range(-(-t // per))]
        start = self.start(_ids(b, 0, 1, tokens.device))
        shifted = torch.cat([start, torch.cat(embedded, dim=1)], dim=1)
        positions = torch.cat(
            [self.pos[s](_ids(b, 0, per, tokens.device)) for s in range(-(-t // per))], dim=1
        )
        return shifted[:, :t] + positions[:, :t]

    def _position(self, index: int, rows: int, device: torch.device) -> torch.Tensor:
        """Position embedding of image position ``index``, ``(rows, 1, D)``."""
        per = self.config.tokens_per_scale
        local = index % per
        return self.pos[index // per](_ids(rows, local, local + 1, device))

    def forward(
        self, tokens: torch.Tensor, text: torch.Tensor, text_mask: torch.Tensor
    ) -> list[torch.Tensor]:
        """Teacher-forced logits: one ``(B, n_s, vocab_s)`` tensor per scale covered by
        ``tokens`` (``(B, k * tokens_per_scale)``, the first k scales).

        Args:
            tokens: token ids ``(B, k * tokens_per_scale)``.
            text: the text features.
            text_mask: their mask.

        Returns:
            The logits, one tensor per scale.
        """
        prefix, prefix_mask = self.text_prefix(text, text_mask)
        x = torch.cat([prefix, self.image_inputs(tokens)], dim=1)
        bias = self._bias(prefix_mask, prefix.shape[1], tokens.shape[1])
        for block in self.blocks:
            x, _ = block(x, bias)
        hidden = x[:, prefix.shape[1] :]
        per = self.config.tokens_per_scale
        return [
            self.head[s](self.head_norm[s](hidden[:, s * per : (s + 1) * per]))
            for s in range(tokens.shape[1] // per)
        ]

    def _bias(self, prefix_mask: torch.Tensor, p: int, t: int) -> torch.Tensor:
        """Additive mask ``(B, 1, P + T, P + T)``: valid text keys for everyone, causal over
        image positions; text queries also see image position 0 (the start vector, which
        depends on no token) so that no row is empty."""
        device = prefix_mask.device
        b = prefix_mask.shape[0]
        causal = torch.ones(t, t, dtype=torch.bool, device=device).tril()
        start_only = torch.zeros(p, t, dtype=torch.bool, device=device)
        start_only[:, 0] = True
        image_keys = torch.cat([start_only, causal], dim=0)
        text_keys = prefix_mask[:, None, :].expand(b, p + t, p)
        allowed = torch.cat([text_keys, image_keys.expand(b, p + t, t)], dim=2)
        return torch.where(allowed, 0.0, NEG)[:, None]

    # -- sampling with a key/value cache ------------------------------------------------------
    @torch.no_grad()
    def generate(
        self,
        *,
        text: torch.Tensor,
        text_mask: torch.Tensor,
        num_scales: int,
        prefix_tokens: torch.Tensor | None = None,
        temperature: float = 1.0,
        top_k: int = 0,
        cfg_scale: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Sample tokens of the first ``num_scales`` scales, ``(B, num_scales * n)``.

        ``prefix_tokens`` (``(B, m)``) are kept as given and the model continues after them
        (coarse-to-fine upsampling). ``cfg_scale`` != 1 mixes conditional and unconditional
        logits: ``uncond + s * (cond - uncond)``.

        Args:
            text: the text features, as for :meth:`forward`.
            text_mask: their mask, as for :meth:`forward`.
            num_scales: how many scales to sample (coarsest first).
            prefix_tokens: given leading tokens, or None.
            temperature: softmax temperature; <= 0 takes the argmax.
            top_k: sample among the ``top_k`` likeliest tokens (0: all).
            cfg_scale: the classifier-free guidance scale (1: none).
            generator: the torch generator of the draws.

        Returns:
            The tokens, ``(B, num_scales * tokens_per_scale)``.
        """
        b = text.shape[0]
        # With no text in any row the conditional pass equals the unconditional one.
        guided = cfg_scale != 1.0 and bool(text_mask.any())
        if guided:
            text = torch.cat([text, text], dim=0)
            text_mask = torch.cat([text_mask, torch.zeros_like(text_mask)], dim=0)
        x, keys_ok, bias = self._first_step_inputs(text, text_mask)
        per = self.config.tokens_per_scale
        total = num_scales * per
        given = 0 if prefix_tokens is None else prefix_tokens.shape[1]
        tokens = torch.zeros(b, total, dtype=torch.long, device=text.device)
        if given:
            tokens[:, :given] = prefix_tokens
        pasts: list = [None] * len(self.blocks)
        for i in range(total):
            for j, block in enumerate(self.blocks):
                x, pasts[j] = block(x, bias, pasts[j])
            if i >= given:
                logits = self._next_logits(x[:, -1], i // per, cfg_scale if guided else None)
                tokens[:, i] = _draw(logits, temperature, top_k, generator)
            if i + 1 == total:
                break
            x, keys_ok, bias = self._step_inputs(tokens[:, i], i, keys_ok, guided)
        return tokens

    def _first_step_inputs(
        self, text: torch.Tensor, text_mask: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Inputs, valid keys and attention bias of the first cached step: the text prefix and
        the start position, fed at once (the prefix attends to valid text keys and the start)."""
        prefix, prefix_mask = self.text_prefix(text, text_mask)
        p = prefix.shape[1]
        rows = prefix.shape[0]
        first = self.start(_ids(rows, 0, 1, text.device)) + self._position(0, rows, text.device)
        x = torch.cat([prefix, first], dim=1)
        keys_ok = torch.cat(
            [prefix_mask, torch.ones(rows, 1, dtype=torch.bool, device=text.device)], dim=1
        )
        bias = torch.where(keys_ok, 0.0, NEG)[:, None, None, :].expand(rows, 1, p + 1, p + 1)
        return x, keys_ok, bias

    def _next_logits(
        self, hidden: torch.Tensor, scale: int, cfg_scale: float | None
    ) -> torch.Tensor:
        """Logits of the next token from the last position's hidden state; with ``cfg_scale``,
        the guided mix of the conditional (first half) and unconditional (second half) rows."""
        logits = self.head[scale](self.head_norm[scale](hidden))
        if cfg_scale is not None:
            half = logits.shape[0] // 2
            cond, uncond = logits[:half], logits[half:]
            logits = uncond + cfg_scale * (cond - uncond)
        return logits

    def _step_inputs(
        self, step_tokens: torch.Tensor, i: int, keys_ok: torch.Tensor, guided: bool
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Input, valid keys and attention bias of position ``i + 1``, fed token ``i``."""
        rows = keys_ok.shape[0]
        if guided:
            step_tokens = torch.cat([step_tokens, step_tokens], dim=0)
        x = self.embed[i // self.config.tokens_per_scale](step_tokens)[:, None]
        x = x + self._position(i + 1, rows, keys_ok.device)
        keys_ok = torch.cat(
            [keys_ok, torch.ones(rows, 1, dtype=torch.bool, device=keys_ok.device)], dim=1
        )
        bias = torch.where(keys_ok, 0.0, NEG)[:, None, None, :]
        return x, keys_ok, bias


def _ids(rows: int, begin: int, end: int, device: torch.device) -> torch.Tensor:
    """Position ids ``begin..end-1`` expanded to ``(rows, end - begin)`` (contiguous)."""
    return torch.arange(begin, end, device=device).expand(rows, -1).contiguous()


def _draw(
    logits: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator | None
) -> torch.Tensor:
    if temperature <= 0:
        return logits.argmax(dim=-1)
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        threshold = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < threshold, float("-inf"))
    return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)[:, 0]


def per_example_loss(model: ScaleCausalTransformer, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """Mean next-token cross-entropy per example, ``(B,)``. Pure and vmap-safe.

    Args:
        model: the AR transformer.
        batch: ``tokens``, ``text`` and ``text_mask``, as the method's ``collate`` makes.

    Returns:
        The loss of each example, averaged over its scales.
    """
    logits = model(batch["tokens"], batch["text"], batch["text_mask"])
    per = model.config.tokens_per_scale
    losses = []
    for s, scale_logits in enumerate(logits):
        target = batch["tokens"][:, s * per : (s + 1) * per]
        losses.append(
            F.cross_entropy(scale_logits.transpose(1, 2), target, reduction="none").mean(dim=1)
        )
    return torch.stack(losses, dim=1).mean(dim=1)
