"""The one DP-SGD configuration: a typed, frozen pydantic model (no torch needed).

Method configs embed it as a field (``dp_sgd: DPSGDConfig = DPSGDConfig(steps=40, ...)``), so
a YAML ``dp_sgd:`` block is validated field by field, and the engine reads the same object.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from isoeps.errors import ConfigError

#: Per-sample gradient backends (:data:`isoeps.privacy.per_sample.BACKENDS` implements them).
Backend = Literal["bk", "functorch", "opacus"]
Optimizer = Literal["adam", "sgd"]


class DPSGDConfig(BaseModel):
    """DP-SGD hyperparameters.

    Args:
        clip_norm: C, the per-record L2 clipping norm.
        expected_batch_size: B; the Poisson sample rate is q = B / N.
        steps: T, the number of noisy steps.
        learning_rate: of the default loop's optimizer (post-processing).
        optimizer: of the default loop (post-processing).
        max_physical_batch_size: records per forward/backward pass; a logical batch is
            processed in chunks of this size.
        backend: "functorch", "opacus" or "bk" (book-keeping clipping: the fastest, for models
            whose trainable parameters all live in nn.Linear, nn.Embedding and nn.LayerNorm).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    clip_norm: float = Field(1.0, gt=0, allow_inf_nan=False)
    expected_batch_size: int = Field(256, ge=1, strict=True)
    steps: int = Field(100, ge=1, strict=True)
    learning_rate: float = Field(1e-3, gt=0, allow_inf_nan=False)
    optimizer: Optimizer = "adam"
    max_physical_batch_size: int = Field(64, ge=1, strict=True)
    backend: Backend = "functorch"

    def __init__(self, **data: Any) -> None:
        try:
            super().__init__(**data)
        except ValidationError as err:
            raise ConfigError(describe(err, prefix="dp_sgd")) from None

    @field_validator("clip_norm", "learning_rate", mode="before")
    @classmethod
    def _no_bool(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be a number, not a boolean")  # noqa: TRY004 - pydantic reads ValueError
        return value

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()


def describe(err: ValidationError, *, prefix: str) -> str:
    """``prefix.field: message (got value)`` for each error, on one line.

    Args:
        err: the pydantic validation error.
        prefix: the config section the fields belong to (e.g. ``dp_sgd``).

    Returns:
        The errors joined with ``"; "``.
    """
    parts = []
    for error in err.errors():
        where = ".".join([prefix, *map(str, error["loc"])])
        parts.append(f"{where}: {error['msg']} (got {error.get('input')!r})")
    return "; ".join(parts)
