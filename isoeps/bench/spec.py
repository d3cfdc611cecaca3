"""The suite spec: YAML merged with OmegaConf, validated by pydantic v2 (``extra="forbid"``).

A suite is a grid: datasets x methods (keyed by label) x budgets x seeds (x method sweeps).
Everything under ``runtime`` (device, jobs, executor, folders, trackers, resources) and every
dataset ``root`` describes *where and how* a cell runs, never *what* it computes: those
fields are excluded from the cell id (:mod:`isoeps.bench.cells`).

Overrides use the OmegaConf dotlist grammar rooted at the suite (``budgets=[1,10]``,
``methods.wavelet-L2.config.steps=50``, ``runtime.device=cuda``). A list sweeps: ``budgets``
and ``seeds`` are lists, and ``methods.<label>.sweep.<field>=[a,b]`` expands one method label
into one variant per value.

``${oc.env:NAME}`` interpolations are allowed only where they cannot change a cell's identity
(dataset roots and ``runtime`` fields). Their values are never stored: a model keeps the
interpolation text and writes it back when dumped (``config.yaml``, ``cell.json``, the payload
a worker gets), and resolves it again wherever it is validated, so a cell runs with the
resolved value of the environment it runs in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from isoeps.errors import ConfigError, validation_problems

BudgetValue = float | Literal["inf", "public"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- environment interpolations: resolved to run, stored as their text ---------------------------

ENV_PREFIX = "${oc.env:"


def _env_strings(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[tuple[Any, ...], str]]:
    """(path, text) of every string under ``value`` that holds an ``${oc.env:...}``."""
    if isinstance(value, str):
        if ENV_PREFIX in value:
            yield path, value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _env_strings(item, (*path, key))
    elif isinstance(value, (list, tuple)):
        for k, item in enumerate(value):
            yield from _env_strings(item, (*path, k))


def _set_path(container: Any, path: tuple[Any, ...], value: Any) -> None:
    for part in path[:-1]:
        container = container[part]
    container[path[-1]] = value


def resolve_env_text(text: str) -> str:
    """The value of a string whose interpolations are all ``${oc.env:...}``."""
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return str(OmegaConf.to_container(OmegaConf.create({"v": text}), resolve=True)["v"])
    except OmegaConfBaseException as exc:
        raise ValueError(str(exc).splitlines()[0]) from None


class _EnvText(_Strict):
    """A model whose ``${oc.env:...}`` values (in :attr:`env_fields`; ``None``: all fields)
    are resolved when validated and dumped as their interpolation text, never as the value."""

    env_fields: ClassVar[tuple[str, ...] | None] = None
    _env: dict[tuple[Any, ...], str] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _resolve_env(cls, data: Any, handler: Any) -> Any:
        if not isinstance(data, dict):
            return handler(data)
        found: dict[tuple[Any, ...], str] = {}
        data = dict(data)
        fields = cls.env_fields if cls.env_fields is not None else tuple(data)
        for name in fields:
            if name not in data:
                continue
            if isinstance(data[name], (dict, list)):
                import copy

                data[name] = copy.deepcopy(data[name])
            for path, text in list(_env_strings(data[name], (name,))):
                try:
                    value = resolve_env_text(text)
                except ValueError as exc:
                    raise ValueError(f"{'.'.join(map(str, path))}: {exc}") from None
                if len(path) == 1:
                    data[name] = value
                else:
                    _set_path(data, path, value)
                found[path] = text
        model = handler(data)
        model._env = found
        return model

    @model_serializer(mode="wrap")
    def _dump_env_text(self, handler: Any) -> Any:
        out = handler(self)
        if self._env and isinstance(out, dict):
            for path, text in self._env.items():
                try:
                    _set_path(out, path, text)
                except (KeyError, IndexError, TypeError):
                    continue  # the field changed since (model_copy(update=...))
        return out


#: Labels become folder names: a safe charset, starting with a letter or digit.
LABEL_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def check_label(label: Any) -> None:
    if not isinstance(label, str) or not LABEL_PATTERN.match(label):
        raise ValueError(
            f"label {label!r}: use letters, digits, '_', '-' and '.', starting with a letter "
            "or digit, at most 64 characters (labels name run folders)"
        )


class PublicSpec(_EnvText):
    """The public corpus used for pretraining, named explicitly."""

    env_fields: ClassVar[tuple[str, ...] | None] = ("root",)

    name: str = Field(description="dataset registry name of the public corpus")
    root: str | None = Field(default=None, description="data root (runtime: not hashed)")
    options: dict[str, Any] = Field(default_factory=dict)
    n: int | None = Field(
        default=None, gt=0, description="public images (None: the loader's default)"
    )


class DatasetSpec(_EnvText):
    env_fields: ClassVar[tuple[str, ...] | None] = ("root",)

    name: str = Field(description="dataset registry name, e.g. synthetic-faces")
    root: str | None = Field(default=None, description="data root (runtime: not hashed)")
    resolution: int = Field(default=32, gt=0)
    n: dict[Literal["private", "reference", "eval", "validation"], int] = Field(
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
    extraction: bool = Field(
        default=False,
        description="keep extraction.npz (samples drawn from *private* training captions, with "
        "those captions and the private record ids) in the run folder; needs samples: all",
    )


class TrackerUploadSpec(_Strict):
    """What trackers may upload beyond DP numbers and grids (both off: opt in)."""

    inf_samples: bool = Field(
        default=False,
        description="upload the sample grid of `inf` cells (no DP: trained "
        "without clipping or noise), labelled as such",
    )
    not_dp: bool = Field(
        default=False,
        description="upload metric values marked not-DP (they read the private "
        "split at evaluation), under a not_dp/ prefix",
    )


class ResourcesSpec(_Strict):
    cpus: int = Field(default=1, gt=0)
    gpus: float = Field(default=0, ge=0)
    memory_gb: float = Field(default=4, gt=0)
    time_limit_min: float | None = Field(default=None, gt=0)


class RuntimeSpec(_EnvText):
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
    tracker_upload: TrackerUploadSpec = Field(default_factory=TrackerUploadSpec)
    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)


def normalise_budgets(value: Any) -> list[Any]:
    """A budget list from YAML or a dotlist: floats > 0, ``inf`` and ``public``.

    Args:
        value: one budget or a list of them (numbers, number strings, ``inf``, ``public``).

    Returns:
        The list, each epsilon a float.

    Raises:
        ValueError: an empty list, or a budget that is none of these.
    """
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


def budget_label(budget: Any) -> str:
    """A budget's text (``1``, ``10``, ``inf``): how two spellings of one budget compare."""
    return budget if isinstance(budget, str) else f"{float(budget):g}"


class AuditSpec(_Strict):
    """A suite's ``audit:`` block: after its cells, ``isoeps run`` audits the chosen ones.

    Each audited cell is run again, separately, with canaries (:mod:`isoeps.bench.audit`);
    the bound goes to ``<store>/audits/`` and the index, and the report's "audited ε (lower
    bound)" column. ``isoeps audit`` takes its defaults from here.
    """

    m: int = Field(default=200, gt=0, description="canaries, each included by a fair coin")
    k: int = Field(default=50, gt=0, description="guesses each side (top and bottom k)")
    beta: float = Field(default=0.05, gt=0, lt=1, description="one minus the confidence")
    samples_per_canary: int = Field(default=1, gt=0, description="samples per canary caption")
    open_samples: int = Field(default=0, ge=0, description="open-prompt samples (black-box)")
    kinds: list[Literal["black-box", "white-box"]] = Field(
        default_factory=lambda: ["black-box"],
        description="black-box (samples, every method) and/or white-box (DP-SGD gradients)",
    )
    budgets: list[BudgetValue] | None = Field(
        default=None, description="the budgets to audit (default: every one but 'public')"
    )
    methods: list[str] | None = Field(default=None, description="method labels (default: all)")
    seeds: list[int] | None = Field(default=None, description="seeds (default: all)")

    @field_validator("budgets", mode="before")
    @classmethod
    def _budgets(cls, value: Any) -> Any:
        budgets = None if value is None else normalise_budgets(value)
        if budgets and "public" in budgets:
            raise ValueError("a 'public' cell trains on no private data: there is nothing to audit")
        return budgets

    @model_validator(mode="after")
    def _guesses(self) -> AuditSpec:
        if 2 * self.k > self.m:
            raise ValueError(
                f"k={self.k} must be at most m/2 = {self.m / 2:g} (top k and bottom k of the m "
                "canaries are guessed; no canary is guessed twice)"
            )
        return self


class SuiteSpec(_Strict):
    name: str
    description: str = ""
    notice: str = Field(
        default="",
        description="said at the top of the suite's report: what the run is and gives up",
    )
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
    audit: AuditSpec | None = Field(
        default=None, description="audit cells with canaries after the run (isoeps.bench.audit)"
    )

    @field_validator("budgets", mode="before")
    @classmethod
    def _budgets(cls, value: Any) -> Any:
        return normalise_budgets(value)

    @model_validator(mode="after")
    def _audited_cells_exist(self) -> SuiteSpec:
        if self.audit is None:
            return self
        budgets = {budget_label(b) for b in self.budgets}
        for budget in self.audit.budgets or []:
            if budget_label(budget) not in budgets:
                raise ValueError(f"audit.budgets: {budget!r} is not one of the suite's budgets")
        for label in self.audit.methods or []:
            if label not in self.methods:
                raise ValueError(f"audit.methods: {label!r} is not a method label of the suite")
        return self

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
        for label in value:
            check_label(label)
        return value


# -- loading -------------------------------------------------------------------------------------

SHIPPED_SUITES: tuple[str, ...] = (
    "demo",
    "quick",
    "smoke",
    "style-capture",
    "fmnist",
    "paper-coco",
    "paper-mmceleba",
)
#: Suite files are YAML named ``*.yaml``: the shipped suites, run folders' ``config.yaml`` and
#: the docs use it. A suite path ending in ``.yml`` is read as well (any existing file is).
SUITE_SUFFIX = ".yaml"
SUITE_SUFFIXES: tuple[str, ...] = (SUITE_SUFFIX, ".yml")


def shipped_suite_text(name: str) -> str:
    """The YAML text of a suite shipped in :mod:`isoeps.suites` (``<name>.yaml``)."""
    path = resources.files("isoeps.suites").joinpath(f"{name}{SUITE_SUFFIX}")
    if not path.is_file():
        raise ConfigError(
            f"unknown suite {name!r}: not a file and not a shipped suite "
            f"({', '.join(SHIPPED_SUITES)})"
        )
    return path.read_text()


def _source_text(source: str | Path) -> tuple[str, str]:
    """(origin label, YAML text) of a suite name or a path."""
    path = Path(source)
    if path.suffix in SUITE_SUFFIXES or path.exists():
        if not path.is_file():
            raise ConfigError(f"suite file not found: {path}")
        return str(path), path.read_text()
    return f"suite {source}", shipped_suite_text(str(source))


def _format_validation(origin: str, exc: ValidationError, model: type[BaseModel]) -> str:
    return f"{origin}: " + "; ".join(validation_problems(exc, model))


def merge_config(text: str, overrides: list[str], *, origin: str) -> dict[str, Any]:
    """Parse YAML, apply dotlist overrides and resolve interpolations (``${oc.env:...}``).

    Args:
        text: the YAML text.
        overrides: ``key=value`` dotlist overrides.
        origin: names the source in errors.

    Returns:
        The merged, resolved mapping.

    Raises:
        ConfigError: invalid YAML, a malformed override, a failed interpolation, or a
            top level that is not a mapping.
    """
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
    _keep_env_text(OmegaConf.to_container(merged, resolve=False), data, origin=origin)
    return data


def _runtime_path(path: tuple[Any, ...]) -> bool:
    """Whether ``path`` is a runtime field (never hashed into a cell id)."""
    return (
        path[:1] == ("runtime",)
        or (len(path) == 3 and path[0] == "datasets" and path[2] == "root")
        or (len(path) == 4 and path[0] == "datasets" and path[2:] == ("public", "root"))
    )


def _keep_env_text(raw: Any, data: dict[str, Any], *, origin: str) -> None:
    """Put the ``${oc.env:...}`` text back into ``data`` (resolved): the models resolve it
    and store the text, never the value. Elsewhere an environment value would enter the
    cell id and every run folder: refused, naming the field."""
    for path, text in _env_strings(raw):
        field = ".".join(map(str, path))
        if not _runtime_path(path):
            raise ConfigError(
                f"{origin}: {field}: ${{oc.env:...}} is allowed only in dataset roots and "
                "runtime fields (which never enter the cell id); here the variable's value would "
                "be stored in every run folder and decide the cell id: write the value itself"
            )
        if "${" in text.replace(ENV_PREFIX, ""):
            raise ConfigError(
                f"{origin}: {field}: ${{oc.env:...}} cannot be combined with other "
                f"interpolations in one value (got {text!r})"
            )
        _set_path(data, path, text)


def validate(data: dict[str, Any], *, origin: str) -> SuiteSpec:
    """``data`` validated as a :class:`SuiteSpec`.

    Args:
        data: the merged suite mapping.
        origin: names the source in errors.

    Returns:
        The suite.

    Raises:
        ConfigError: a field does not validate.
    """
    try:
        return SuiteSpec.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation(origin, exc, SuiteSpec)) from None


def load_suite(source: str | Path, overrides: list[str] | None = None) -> SuiteSpec:
    """Load a shipped suite by name, or a YAML file, with dotlist ``overrides`` applied.

    This checks the schema only; :func:`isoeps.bench.cells.check_suite` checks registry names,
    method configs and data roots.

    Args:
        source: a shipped suite's name or a YAML file.
        overrides: ``key=value`` dotlist overrides; None for none.

    Returns:
        The suite.

    Raises:
        ConfigError: the suite cannot be read, parsed or validated.
    """
    origin, text = _source_text(source)
    data = merge_config(text, list(overrides or []), origin=origin)
    return validate(data, origin=origin)


def dump_suite(spec: SuiteSpec) -> str:
    """The resolved suite as YAML."""
    import yaml

    return yaml.safe_dump(spec.model_dump(mode="json"), sort_keys=False)
