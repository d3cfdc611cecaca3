"""The suite spec: YAML merged with OmegaConf, validated by pydantic v2 (``extra="forbid"``).

A suite is a grid: datasets x methods (keyed by label) x budgets x seeds (x method sweeps).
Everything under ``runtime`` (device, jobs, executor, folders, trackers, resources) and every
dataset ``root`` describes *where and how* a cell runs, never *what* it computes: those
fields are excluded from the cell id (:mod:`isoeps.bench.cells`).

Overrides use the OmegaConf dotlist grammar rooted at the suite (``budgets=[1,10]``,
``methods.wavelet-L2.config.steps=50``, ``runtime.device=cuda``). A list sweeps: ``budgets``
and ``seeds`` are lists, and ``methods.<label>.sweep.<field>=[a,b]`` expands one method label
into one variant per value.
"""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from isoeps.errors import ConfigError

BudgetValue = float | Literal["inf", "public"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PublicSpec(_Strict):
    """The public corpus used for pretraining, named explicitly."""

    name: str = Field(description="dataset registry name of the public corpus")
    root: str | None = Field(default=None, description="data root (runtime: not hashed)")
    options: dict[str, Any] = Field(default_factory=dict)
    n: int | None = Field(default=None, gt=0, description="public images (None: the loader's default)")


class DatasetSpec(_Strict):
    name: str = Field(description="dataset registry name, e.g. synthetic-faces")
    root: str | None = Field(default=None, description="data root (runtime: not hashed)")
    resolution: int = Field(default=32, gt=0)
    n: dict[Literal["private", "reference", "eval"], int] = Field(
        default_factory=dict, description="images per split; missing splits use the loader default"
    )
    options: dict[str, Any] = Field(default_factory=dict)
    data_seed: int = Field(default=0, description="seed of the data draw (synthetic data)")
    public: PublicSpec | None = Field(
        default=None, description="public corpus; None: this dataset's own public split"
    )

    @field_validator("n")
    @classmethod
    def _positive_sizes(cls, value: dict[str, int]) -> dict[str, int]:
        for split, count in value.items():
            if count <= 0:
                raise ValueError(f"n.{split} must be > 0, got {count}")
        return value


class MethodSpec(_Strict):
    method: str = Field(description="method registry name, e.g. wavelet-two-stage")
    config: dict[str, Any] = Field(default_factory=dict, description="the method's Config fields")
    sweep: dict[str, list[Any]] = Field(
        default_factory=dict, description="config field -> values; one variant per combination"
    )


class StoreSpec(_Strict):
    samples: Literal["all", "grid", "none"] = "all"
    grid_size: int = Field(default=36, gt=0, description="images in the stored sample grid")


class ResourcesSpec(_Strict):
    cpus: int = Field(default=1, gt=0)
    gpus: float = Field(default=0, ge=0)
    memory_gb: float = Field(default=4, gt=0)
    time_limit_min: float | None = Field(default=None, gt=0)


class RuntimeSpec(_Strict):
    """How cells run. Nothing here enters the cell id."""

    device: str = "cpu"
    jobs: int = Field(default=1, gt=0)
    executor: str = Field(default="local", description="registry name: local, ray, slurm")
    executor_options: dict[str, Any] = Field(
        default_factory=dict, description="executor keyword options (address, partition, ...)"
    )
    results: str = "results"
    reports: str | None = None
    secure: bool = False
    trackers: list[str] = Field(default_factory=list)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)


class SuiteSpec(_Strict):
    name: str
    description: str = ""
    imports: list[str] = Field(default_factory=list, description="modules that register plugins")
    datasets: dict[str, DatasetSpec]
    methods: dict[str, MethodSpec]
    budgets: list[BudgetValue] = Field(description="epsilon > 0, 'inf' or 'public'")
    delta: Literal["auto"] | float = Field(
        default="auto", description="'auto' = 1/(N ln N) with N private images, or a number"
    )
    seeds: list[int] = Field(default_factory=lambda: [0])
    n_samples: int = Field(default=1000, gt=0, description="generated images per cell (n)")
    extraction_samples: int = Field(
        default=0, ge=0, description="samples from training captions for the mem metric"
    )
    open_prompt_samples: int = Field(
        default=0,
        ge=0,
        description="samples from the open prompt '' (no attribute named) for metrics that "
        "need them (style capture, attr_tv); 0 measures attr_tv on the prompted samples",
    )
    metrics: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="metric registry name -> options (backbone, ...)"
    )
    cross_check_accountants: list[str] = Field(default_factory=lambda: ["pld", "rdp"])
    store: StoreSpec = Field(default_factory=StoreSpec)
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec)

    @field_validator("budgets", mode="before")
    @classmethod
    def _budgets(cls, value: Any) -> Any:
        if not isinstance(value, (list, tuple)):
            value = [value]
        out = []
        for item in value:
            if isinstance(item, float) and math.isinf(item) and item > 0:
                item = "inf"
            if isinstance(item, str) and item.strip().lower() in ("inf", "infinity", "public"):
                item = "inf" if item.strip().lower() != "public" else "public"
            elif isinstance(item, (str, int, float)) and not isinstance(item, bool):
                try:
                    item = float(item)
                except ValueError:
                    raise ValueError(
                        f"budget must be a number > 0, 'inf' or 'public', got {item!r}"
                    ) from None
                if math.isnan(item) or item <= 0:
                    raise ValueError(f"epsilon must be > 0, got {item!r}")
            out.append(item)
        if not out:
            raise ValueError("budgets is empty")
        return out

    @field_validator("metrics", mode="before")
    @classmethod
    def _metrics(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            return {name: {} for name in value}
        if isinstance(value, dict):
            return {name: ({} if opts is None else opts) for name, opts in value.items()}
        return value

    @field_validator("delta")
    @classmethod
    def _delta(cls, value: Any) -> Any:
        if value != "auto" and not 0 < float(value) < 1:
            raise ValueError(f"delta must be 'auto' or in (0, 1), got {value!r}")
        return value

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, value: list[int]) -> list[int]:
        if not value:
            raise ValueError("seeds is empty")
        if len(set(value)) != len(value):
            raise ValueError(f"seeds has duplicates: {value}")
        return value

    @field_validator("datasets", "methods")
    @classmethod
    def _not_empty(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            raise ValueError("at least one entry is required")
        return value


# -- loading -------------------------------------------------------------------------------------

SHIPPED_SUITES: tuple[str, ...] = ("quick", "smoke", "paper-coco", "paper-mmceleba")


def shipped_suite_text(name: str) -> str:
    """The YAML text of a suite shipped in :mod:`isoeps.suites`."""
    path = resources.files("isoeps.suites").joinpath(f"{name}.yaml")
    if not path.is_file():
        raise ConfigError(
            f"unknown suite {name!r}: not a file and not a shipped suite "
            f"({', '.join(SHIPPED_SUITES)})"
        )
    return path.read_text()


def _source_text(source: str | Path) -> tuple[str, str]:
    """(origin label, YAML text) of a suite name or a path."""
    path = Path(source)
    if path.suffix in (".yaml", ".yml") or path.exists():
        if not path.is_file():
            raise ConfigError(f"suite file not found: {path}")
        return str(path), path.read_text()
    return f"suite {source}", shipped_suite_text(str(source))


def _format_validation(origin: str, exc: ValidationError, model: type[BaseModel]) -> str:
    lines = []
    for error in exc.errors():
        loc = ".".join(str(part) for part in error["loc"])
        if error["type"] == "extra_forbidden":
            known = _known_fields(model, error["loc"][:-1])
            hint = f"; known fields: {', '.join(known)}" if known else ""
            lines.append(f"{loc}: unknown field{hint}")
        else:
            lines.append(f"{loc}: {error['msg']} (got {error.get('input')!r})")
    return f"{origin}: " + "; ".join(lines)


def _known_fields(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the sub-model at ``loc`` (walking dict-valued fields by key)."""
    current: Any = model
    skip_key = False
    for part in loc:
        if skip_key:
            skip_key = False
            continue
        fields = getattr(current, "model_fields", None)
        if not fields or part not in fields:
            return []
        annotation = fields[part].annotation
        args = getattr(annotation, "__args__", ())
        if getattr(annotation, "__origin__", None) is dict and args:
            current, skip_key = args[1], True
        elif isinstance(annotation, type) and issubclass(annotation, BaseModel):
            current = annotation
        else:
            candidates = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
            if not candidates:
                return []
            current = candidates[0]
    return list(getattr(current, "model_fields", {}))


def merge_config(text: str, overrides: list[str], *, origin: str) -> dict[str, Any]:
    """Parse YAML, apply dotlist overrides and resolve interpolations (``${oc.env:...}``)."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        base = OmegaConf.create(text)
    except Exception as exc:  # noqa: BLE001 (yaml errors come through with the line)
        raise ConfigError(f"{origin}: invalid YAML: {exc}") from None
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
    try:
        merged = OmegaConf.merge(base, OmegaConf.from_dotlist(list(overrides)))
        data = OmegaConf.to_container(merged, resolve=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", None)
        detail = str(exc).splitlines()[0]
        raise ConfigError(f"{origin}: {key + ': ' if key else ''}{detail}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{origin}: a suite must be a mapping, got {type(data).__name__}")
    return data


def validate(data: dict[str, Any], *, origin: str) -> SuiteSpec:
    try:
        return SuiteSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(origin, exc, SuiteSpec)) from None


def load_suite(source: str | Path, overrides: list[str] | None = None) -> SuiteSpec:
    """Load a shipped suite by name, or a YAML file, with dotlist ``overrides`` applied.

    This checks the schema only; :func:`isoeps.bench.cells.check_suite` checks registry names,
    method configs and data roots.
    """
    origin, text = _source_text(source)
    data = merge_config(text, list(overrides or []), origin=origin)
    return validate(data, origin=origin)


def dump_suite(spec: SuiteSpec) -> str:
    """The resolved suite as YAML."""
    import yaml

    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
