"""Spectral image tokenizers in the spirit of SIT (arXiv 2412.09607): the geometry and
interface every one shares (:class:`SpectralTokenizerBase`), and the k-means tokenizer
(:class:`SpectralTokenizer`). The learned one is in :mod:`isoeps.models.learned_tokenizer`.

An image is split by an ``L``-level Haar DWT into ``S = L + 1`` scales, coarsest first:
``[LL_L, details_L, ..., details_1]`` (a details scale stacks the H, V and D bands of all
three colour channels: 9 channels). Each scale is cut into square patches, with patches twice
as large at each finer level, so every scale has the same number of tokens
``(H / 2^L / base_patch)^2``. In the k-means tokenizer, each patch vector is quantised to the
nearest entry of that scale's own codebook.

The codebooks are a VQ fitted by k-means (Lloyd's algorithm) on PUBLIC patches, then frozen.
Because the Haar transform is orthonormal, squared error on coefficients equals squared error
on pixels, so k-means on raw coefficients minimises pixel MSE directly; a per-band
normalisation would only reweight the error. The tokenizer has no EMA state and no trainable
parameter: nothing a private forward pass does can change it (all codebooks are buffers).
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass

import numpy as np
import torch

from isoeps.ops.haar import check_divisible, haar_dwt2, haar_idwt2


@dataclass(frozen=True)
class SpectralGeometry:
    """How images are cut into scales and tokens, shared by every spectral tokenizer.

    ``levels``: Haar levels L; ``base_patch``: patch side on the two coarsest scales (it
    doubles per finer level)."""

    levels: int = 2
    base_patch: int = 2

    def __post_init__(self) -> None:
        if self.levels < 1:
            raise ValueError(f"tokenizer levels must be >= 1, got {self.levels}")
        if self.base_patch < 1:
            raise ValueError(f"tokenizer base_patch must be >= 1, got {self.base_patch}")

    @property
    def num_scales(self) -> int:
        return self.levels + 1

    def patch_size(self, scale: int) -> int:
        """Patch side on ``scale`` (0 = LL_L; s >= 1 = details at level L - s + 1)."""
        return self.base_patch * 2 ** max(0, scale - 1)

    def check_resolution(self, resolution: int) -> None:
        """Raise a clear error when ``resolution`` cannot be tokenised with this config."""
        check_divisible(resolution, resolution, self.levels)
        coarse = resolution // 2**self.levels
        if coarse % self.base_patch:
            raise ValueError(
                f"image size {resolution} gives a {coarse}x{coarse} level-{self.levels} band, "
                f"not divisible by base_patch={self.base_patch}"
            )

    def tokens_per_scale(self, resolution: int) -> int:
        self.check_resolution(resolution)
        return (resolution // 2**self.levels // self.base_patch) ** 2


@dataclass(frozen=True)
class TokenizerConfig(SpectralGeometry):
    """The k-means tokenizer: ``codebook_size`` codes per scale, fitted by ``kmeans_iters``
    Lloyd iterations."""

    codebook_size: int = 512
    kmeans_iters: int = 20

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.codebook_size < 2:
            raise ValueError(f"tokenizer codebook_size must be >= 2, got {self.codebook_size}")


def to_float(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 ``(N, 3, H, W)`` -> float32 in [-1, 1]."""
    tensor = torch.as_tensor(np.asarray(images))
    return tensor.float() / 127.5 - 1.0


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """float in [-1, 1] -> uint8 ``(N, 3, H, W)`` (clamped, rounded)."""
    return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu().numpy()


def _patchify(x: torch.Tensor, patch: int) -> torch.Tensor:
    """``(B, C, h, w)`` -> ``(B, (h/p)*(w/p), C*p*p)``, patches in raster order."""
    b, c, h, w = x.shape
    x = x.reshape(b, c, h // patch, patch, w // patch, patch)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(b, (h // patch) * (w // patch), c * patch * patch)


def _unpatchify(v: torch.Tensor, channels: int, side: int, patch: int) -> torch.Tensor:
    """Inverse of :func:`_patchify` for a square ``side x side`` band."""
    b = v.shape[0]
    grid = side // patch
    x = v.reshape(b, grid, grid, channels, patch, patch)
    return x.permute(0, 3, 1, 4, 2, 5).reshape(b, channels, side, side)


def scales_of(coefficients: list, levels: int) -> list[torch.Tensor]:
    """pywt-order Haar coefficients -> one tensor per scale (details stacked to 9 channels).

    Args:
        coefficients: the output of :func:`haar_dwt2`.
        levels: its number of levels.

    Returns:
        ``[LL, details_coarsest, ..., details_finest]``; details are ``(B, 9, h, w)``.
    """
    out = [coefficients[0]]
    for bands in coefficients[1 : levels + 1]:
        out.append(torch.cat(list(bands), dim=1))
    return out


def coefficients_of(scales: list[torch.Tensor]) -> list:
    """Inverse of :func:`scales_of` (for as many scales as given)."""
    out: list = [scales[0]]
    for stacked in scales[1:]:
        out.append(tuple(stacked.chunk(3, dim=1)))
    return out


class SpectralTokenizerBase(torch.nn.Module):
    """What every spectral tokenizer offers: Haar scales coarse to fine, ``tokens_per_scale``
    ids per scale (each below :attr:`vocab_size`), and decoding of any prefix of scales.

    A subclass implements :meth:`encode`, :meth:`decode_scales`, :meth:`fit` and
    :attr:`vocab_size`. Decoding must be scale-causal: the coefficients of scale ``s`` depend
    on the tokens of scales ``0..s`` only, so a prefix of scales decodes to the coarse image.
    """

    config: SpectralGeometry

    def __init__(self, config: SpectralGeometry, *, resolution: int) -> None:
        super().__init__()
        config.check_resolution(resolution)
        self.config = config
        self.resolution = int(resolution)

    # -- geometry -------------------------------------------------------------------------
    @property
    def num_scales(self) -> int:
        return self.config.num_scales

    @property
    def tokens_per_scale(self) -> int:
        return self.config.tokens_per_scale(self.resolution)

    @property
    def vocab_size(self) -> int:
        """How many distinct token ids a scale has."""
        raise NotImplementedError

    def channels(self, scale: int) -> int:
        return 3 if scale == 0 else 9

    def side(self, scale: int) -> int:
        """The side of the band that ``scale`` covers."""
        level = self.config.levels if scale == 0 else self.config.levels - scale + 1
        return self.resolution // 2**level

    def metadata(self) -> dict[str, object]:
        return {"config": asdict(self.config), "resolution": self.resolution}

    def bands(self, images: torch.Tensor, num_scales: int | None = None) -> list[torch.Tensor]:
        """float images ``(B, 3, H, W)`` -> the Haar coefficients of the first ``num_scales``
        scales (None for all), coarsest first, as :func:`scales_of` stacks them.

        Raises:
            ValueError: the images are not at the tokenizer's resolution.
        """
        if images.shape[-1] != self.resolution or images.shape[-2] != self.resolution:
            raise ValueError(
                f"tokenizer was fitted for {self.resolution}x{self.resolution} images, "
                f"got {tuple(images.shape[-2:])}"
            )
        scales = scales_of(haar_dwt2(images, self.config.levels), self.config.levels)
        return scales[: self.num_scales if num_scales is None else num_scales]

    def split_scales(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """token ids ``(B, k * tokens_per_scale)`` -> one ``(B, tokens_per_scale)`` per scale.

        Raises:
            ValueError: not a whole number of scales, or more scales than there are.
        """
        per = self.tokens_per_scale
        if tokens.shape[1] % per or tokens.shape[1] // per > self.num_scales:
            raise ValueError(
                f"expected a multiple of {per} tokens (<= {self.num_scales} scales), "
                f"got {tokens.shape[1]}"
            )
        return list(tokens.split(per, dim=1)) if tokens.shape[1] else []

    # -- what a tokenizer implements ------------------------------------------------------
    def encode(self, images: torch.Tensor, num_scales: int | None = None) -> torch.Tensor:
        """float images ``(B, 3, H, W)`` in [-1, 1] -> token ids ``(B, k * tokens_per_scale)``
        of the first ``k = num_scales`` scales (None for all), coarse first."""
        raise NotImplementedError

    def decode_scales(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """token ids for the first ``k`` scales -> those scales' coefficient tensors."""
        raise NotImplementedError

    def fit(
        self,
        images: torch.Tensor,
        *,
        seed: int,
        logger: logging.Logger | None = None,
        show_progress: bool = False,
        device: str | torch.device = "cpu",
    ) -> dict[str, float]:
        """Fit on PUBLIC float ``images``; returns :meth:`psnr_per_scale` on them."""
        raise NotImplementedError

    # -- shared ---------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, tokens: torch.Tensor) -> torch.Tensor:
        """token ids for the first ``k`` scales -> the image at the finest level they reach,
        in pixel units ([-1, 1]; an ``LL_l`` band is divided by its gain ``2^l``)."""
        scales = self.decode_scales(tokens)
        approx = haar_idwt2(coefficients_of(scales))
        level = self.config.levels - (len(scales) - 1)
        return approx / 2**level

    @torch.no_grad()
    def psnr_per_scale(self, images: torch.Tensor) -> dict[str, float]:
        """Reconstruction PSNR (dB, images in [-1, 1], peak-to-peak 2) of the image decoded
        from the first ``s + 1`` scales, against the exact level-``L - s`` approximation."""
        tokens = self.encode(images)
        coefficients = haar_dwt2(images, self.config.levels)
        per = self.tokens_per_scale
        out = {}
        for s in range(self.num_scales):
            level = self.config.levels - s
            target = haar_idwt2(coefficients[: s + 1]) / 2**level
            recon = self.decode(tokens[:, : (s + 1) * per])
            out[f"psnr_scale{s}"] = psnr(recon, target)
        return out


class SpectralTokenizer(SpectralTokenizerBase):
    """The k-means tokenizer: Haar scales -> patches -> per-scale codebook indices, and back.

    ``resolution`` is the image side it was fitted for. Codebooks are buffers
    ``codebook_<s>`` of shape ``(codebook_size, patch_dim_s)``.
    """

    config: TokenizerConfig

    def __init__(self, config: TokenizerConfig, *, resolution: int) -> None:
        super().__init__(config, resolution=resolution)
        for scale in range(config.num_scales):
            self.register_buffer(
                f"codebook_{scale}", torch.zeros(config.codebook_size, self.patch_dim(scale))
            )
        self.requires_grad_(False)
        self.eval()

    @property
    def vocab_size(self) -> int:
        return self.config.codebook_size

    def patch_dim(self, scale: int) -> int:
        return self.channels(scale) * self.config.patch_size(scale) ** 2

    def codebook(self, scale: int) -> torch.Tensor:
        return getattr(self, f"codebook_{scale}")

    # -- encode / decode ------------------------------------------------------------------
    def patch_vectors(self, images: torch.Tensor, num_scales: int | None = None) -> list:
        """float images ``(B, 3, H, W)`` -> per-scale patch vectors ``(B, n, patch_dim)``.

        Args:
            images: float images, at the tokenizer's resolution.
            num_scales: how many scales, coarsest first; None for all.

        Returns:
            One tensor per scale.

        Raises:
            ValueError: the images are not at the tokenizer's resolution.
        """
        scales = self.bands(images, num_scales)
        return [_patchify(band, self.config.patch_size(s)) for s, band in enumerate(scales)]

    @torch.no_grad()
    def encode(self, images: torch.Tensor, num_scales: int | None = None) -> torch.Tensor:
        """float images -> token ids ``(B, num_scales * tokens_per_scale)``, coarse first;
        each scale's ids index that scale's codebook.

        Args:
            images: float images ``(B, 3, H, W)`` in [-1, 1], at the tokenizer's resolution.
            num_scales: how many scales, coarsest first; None for all.

        Returns:
            Long token ids.
        """
        vectors = self.patch_vectors(images, num_scales)
        return torch.cat([_nearest(v, self.codebook(s)) for s, v in enumerate(vectors)], dim=1)

    @torch.no_grad()
    def decode_scales(self, tokens: torch.Tensor) -> list[torch.Tensor]:
        """token ids for the first ``k`` scales -> those scales' coefficient tensors."""
        return [
            _unpatchify(
                self.codebook(s)[ids], self.channels(s), self.side(s), self.config.patch_size(s)
            )
            for s, ids in enumerate(self.split_scales(tokens))
        ]

    # -- fitting (public data only) ---------------------------------------------------------
    @torch.no_grad()
    def fit(
        self,
        images: torch.Tensor,
        *,
        seed: int,
        logger: logging.Logger | None = None,
        show_progress: bool = False,
        device: str | torch.device = "cpu",
    ) -> dict[str, float]:
        """Fit every scale's codebook by k-means on the patches of PUBLIC ``images``.

        Args:
            images: float public images ``(B, 3, H, W)`` in [-1, 1].
            seed: the seed of k-means.
            logger: unused (k-means takes seconds).
            show_progress: unused.
            device: unused: k-means runs on the CPU, where the codebooks live.

        Returns:
            Reconstruction PSNR per scale (on these images) as ``psnr_scale<s>``.

        Raises:
            ValueError: a scale has fewer patches than ``codebook_size``.
        """
        generator = torch.Generator().manual_seed(seed)
        for scale, vectors in enumerate(self.patch_vectors(images)):
            flat = vectors.reshape(-1, vectors.shape[-1])
            self.codebook(scale).copy_(
                kmeans(flat, self.config.codebook_size, self.config.kmeans_iters, generator)
            )
        return self.psnr_per_scale(images)


def psnr(recon: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR in dB for images in [-1, 1].

    Args:
        recon: the reconstruction, clamped to [-1, 1].
        target: the original.

    Returns:
        The PSNR (peak-to-peak range 2).
    """
    mse = float(((recon.clamp(-1, 1) - target) ** 2).mean())
    return float(10 * np.log10(4.0 / max(mse, 1e-12)))


def _nearest(vectors: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest codebook row for each vector (any leading dims)."""
    flat = vectors.reshape(-1, vectors.shape[-1])
    out = torch.empty(flat.shape[0], dtype=torch.long)
    norms = (codebook**2).sum(dim=1)
    for start in range(0, flat.shape[0], 8192):
        chunk = flat[start : start + 8192]
        distances = norms - 2 * chunk @ codebook.T
        out[start : start + 8192] = distances.argmin(dim=1)
    return out.reshape(vectors.shape[:-1])


def kmeans(vectors: torch.Tensor, k: int, iters: int, generator: torch.Generator) -> torch.Tensor:
    """Lloyd's k-means with k-means++-style seeding on a subsample; empty clusters are
    re-seeded at the points worst served. Deterministic given ``generator``.

    Args:
        vectors: ``(n, d)`` points.
        k: the number of centroids; at most n.
        iters: Lloyd iterations.
        generator: the generator of the seeding.

    Returns:
        The centroids ``(k, d)``.

    Raises:
        ValueError: n < k.
    """
    n = vectors.shape[0]
    if n < k:
        raise ValueError(
            f"k-means needs at least codebook_size={k} patches, got {n}; "
            "use more public images or a smaller codebook_size"
        )
    centroids = _plus_plus(vectors, k, generator)
    for _ in range(iters):
        assign = _nearest(vectors, centroids)
        sums = torch.zeros_like(centroids).index_add_(0, assign, vectors)
        counts = torch.bincount(assign, minlength=k).to(vectors.dtype)
        empty = counts == 0
        centroids = torch.where(empty[:, None], centroids, sums / counts.clamp_min(1)[:, None])
        if empty.any():
            errors = ((vectors - centroids[assign]) ** 2).sum(dim=1)
            worst = errors.topk(int(empty.sum())).indices
            centroids[empty] = vectors[worst]
    return centroids


def _plus_plus(vectors: torch.Tensor, k: int, generator: torch.Generator) -> torch.Tensor:
    pool_size = min(vectors.shape[0], 20 * k)
    pool = vectors[torch.randperm(vectors.shape[0], generator=generator)[:pool_size]]
    norms = (pool**2).sum(dim=1)
    chosen = [int(torch.randint(pool_size, (1,), generator=generator))]
    best = (norms - 2 * pool @ pool[chosen[0]] + norms[chosen[0]]).clamp_min(0)
    for _ in range(k - 1):
        if float(best.sum()) <= 0:
            index = int(torch.randint(pool_size, (1,), generator=generator))
        else:
            index = int(torch.multinomial(best, 1, generator=generator))
        chosen.append(index)
        distance = (norms - 2 * pool @ pool[index] + norms[index]).clamp_min(0)
        best = torch.minimum(best, distance)
    return pool[chosen].clone()
