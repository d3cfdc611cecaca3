"""Grid expansion and content-hash cell ids.

A cell is one point of a suite's grid: dataset x method variant x budget x seed. Its id hashes
only the experiment: the dataset identity (name, resolution, split sizes, options, data seed,
public corpus), the method label, name, version and resolved config, the budget, the delta
rule, the seed, n and the metrics. Runtime settings (device, jobs, executor, folders, caches,
logging, trackers, resources) and dataset roots never enter it, so moving a suite to another
machine or changing ``--jobs`` recomputes nothing. The content fingerprints of the loaded
splits are recorded in each run folder (``environment.json``).
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from isoeps import registry
from isoeps.bench.spec import DatasetSpec, StoreSpec, SuiteSpec, budget_label
from isoeps.cache import content_key
from isoeps.errors import ConfigError, UnknownNameError

CELL_ID_LENGTH = 12


class Cell(BaseModel):
    """One expanded cell; JSON round-trippable so executors can ship it to workers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    cell_id: str
    suite: str
    imports: list[str]
    dataset_label: str
    dataset: DatasetSpec
    method_label: str
    method_name: str
    method_version: str
    method_config: dict[str, Any]
    budget: str  # "1", "10", "inf" or "public"
    epsilon: float | None
    delta_rule: str | float
    seed: int
    n_samples: int
    extraction_samples: int
    open_prompt_samples: int = 0
    metrics: dict[str, dict[str, Any]]
    #: Versions of the metrics that were bumped past "1" (see ``Metric.version``).
    metric_versions: dict[str, str] = {}
    cross_check_accountants: list[str]
    secure: bool = False
    store: StoreSpec = StoreSpec()

    @property
    def nominal_epsilon(self) -> float | None:
        """The ε the budget names, as a metric reads it: the target of a private cell, ``inf``
        for a non-private row, None for a public row (no private data, so no ε at all)."""
        if self.budget == "inf":
            return float("inf")
        return self.epsilon

    @property
    def slug(self) -> str:
        """A readable folder name; the id keeps it unique."""
        method = "".join(c if c.isalnum() or c in "-_=" else "_" for c in self.method_label)
        return f"{self.dataset_label}.{method}.eps-{self.budget}.s{self.seed}.{self.cell_id}"

    def identity(self) -> dict[str, Any]:
        return cell_identity(self)


def dataset_identity(spec: DatasetSpec) -> dict[str, Any]:
    """What determines the data, without the root (a runtime location)."""
    public = None
    if spec.public is not None:
        public = {"name": spec.public.name, "options": spec.public.options, "n": spec.public.n}
    return {
        "name": spec.name,
        "resolution": spec.resolution,
        "n": dict(sorted(spec.n.items())),
        "options": spec.options,
        "data_seed": spec.data_seed,
        "public": public,
    }


def cell_identity(cell: Cell) -> dict[str, Any]:
    """The experiment, and nothing about the runtime: the payload hashed into the cell id."""
    identity = {
        "dataset": dataset_identity(cell.dataset),
        "method": {
            "label": cell.method_label,
            "name": cell.method_name,
            "version": cell.method_version,
            "config": cell.method_config,
        },
        "budget": cell.budget,
        "delta": cell.delta_rule,
        "seed": cell.seed,
        "n": cell.n_samples,
        "extraction": cell.extraction_samples,
        "metrics": cell.metrics,
    }
    if cell.open_prompt_samples:  # absent when 0, so older cells keep their ids
        identity["open_prompt"] = cell.open_prompt_samples
    if cell.metric_versions:  # absent while every metric is at version 1, likewise
        identity["metric_versions"] = cell.metric_versions
    if cell.secure:  # benchmark cells keep their ids; secure ones are different experiments
        identity["secure"] = True
    return identity


def _method_class(label: str, name: str) -> Any:
    try:
        return registry.get("isoeps.methods", name)
    except UnknownNameError as exc:
        raise ConfigError(f"methods.{label}.method: {exc}") from None
    except ImportError as exc:  # an installed entry point whose module is broken or missing
        raise ConfigError(
            f"methods.{label}.method: cannot load {name!r}: {type(exc).__name__}: {exc}"
        ) from None


def resolve_method_config(label: str, method_class: Any, config: dict[str, Any]) -> dict[str, Any]:
    """The method's full config (defaults filled in), validated by its ``Config`` model.

    Args:
        label: the method's label in the suite, named in errors as ``methods.<label>.config``.
        method_class: the registered method class.
        config: the suite's config fields for it.

    Returns:
        The full config, JSON-serialisable.

    Raises:
        ConfigError: a field does not validate.
    """
    try:
        return method_class.Config(**config).model_dump(mode="json")
    except ValidationError as exc:
        raise ConfigError.from_validation(
            exc, method_class.Config, field=f"methods.{label}.config"
        ) from None


def _variants(label: str, config: dict[str, Any], sweep: dict[str, list[Any]]):
    """(label, config) for each combination of the sweep values."""
    if not sweep:
        yield label, dict(config)
        return
    keys = sorted(sweep)
    for values in itertools.product(*(sweep[k] for k in keys)):
        variant = dict(config)
        variant.update(zip(keys, values))
        suffix = ",".join(f"{k}={v}" for k, v in zip(keys, values))
        yield f"{label}[{suffix}]", variant


def check_suite(spec: SuiteSpec, *, check_roots: bool = True) -> None:
    """Check registry names and data roots, naming the field at fault.

    Also builds each metric (validating its options), checks backbones and the
    cross-check accountants, before any cell trains.

    Args:
        spec: the suite.
        check_roots: also check that each dataset's root is available.

    Raises:
        ConfigError: an unknown dataset, method or metric, a bad option, or a missing root.
    """
    registry.import_modules(spec.imports)
    known_datasets = registry.names("isoeps.datasets")
    for label, dataset in spec.datasets.items():
        entries = [(f"datasets.{label}", dataset.name, dataset.root)]
        if dataset.public is not None:
            entries.append((f"datasets.{label}.public", dataset.public.name, dataset.public.root))
        for field, name, root in entries:
            if name not in known_datasets:
                raise ConfigError(
                    f"{field}.name: unknown dataset {name!r}; known: {', '.join(known_datasets)}"
                )
            if check_roots:
                _check_root(field, name, root)
    for label, method in spec.methods.items():
        _method_class(label, method.method)
    known_metrics = registry.names("isoeps.metrics")
    for name, options in spec.metrics.items():
        if name not in known_metrics:
            raise ConfigError(f"metrics.{name}: unknown metric; known: {', '.join(known_metrics)}")
        # Building each metric validates its options (its ``Options`` model) before any cell
        # trains, not after its samples are drawn; an error names metrics.<name>.<field>.
        metric = make_metric(name, options)
        _check_backbone(name, options, metric)
    _check_accountants(spec.cross_check_accountants)


def make_metric(name: str, options: dict[str, Any]) -> Any:
    """The registered metric ``name`` built from its suite options; a bad option is a
    ConfigError naming ``metrics.<name>.<field>``.

    Args:
        name: the metric's registered name.
        options: its options from the suite.

    Returns:
        The metric instance.

    Raises:
        ConfigError: a bad option.
        UnknownNameError: no metric is registered as ``name``.
    """
    metric_class = registry.get("isoeps.metrics", name)
    from_options = getattr(metric_class, "from_options", None)
    if from_options is not None:  # a Metric subclass (its Options model names the field)
        return from_options(options, field=f"metrics.{name}")
    try:  # any other callable the registry holds
        return metric_class(**options)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"metrics.{name}: {exc}") from None


def _check_accountants(names: list[str]) -> None:
    """Cross-check accountants must be registered: a typo would only show after training."""
    from isoeps.accountants import accountant_names

    known = accountant_names()
    for k, name in enumerate(names):
        if name not in known:
            raise ConfigError(
                f"cross_check_accountants[{k}]: unknown accountant {name!r}; known: "
                f"{', '.join(known)}"
            )


def _check_backbone(metric_name: str, options: dict[str, Any], metric: Any) -> None:
    """A metric's backbone must resolve (as ``metrics.backbones.load_backbone`` resolves it)
    before any cell trains, not when its samples are measured."""
    backbone = getattr(getattr(metric, "options", None), "backbone", options.get("backbone"))
    if not isinstance(backbone, str):
        return
    field = f"metrics.{metric_name}.backbone"
    if backbone.startswith("clip:"):
        if len(backbone.split(":", 2)) != 3 or not all(backbone.split(":", 2)[1:]):
            raise ConfigError(f"{field}: {backbone!r}: expected clip:<arch>:<path to weights>")
        return
    if backbone == "clip":
        raise ConfigError(
            f"{field}: backbone 'clip' needs its architecture and local weights: clip:<arch>:<path>"
        )
    known = registry.names("isoeps.backbones")
    if backbone not in known:
        raise ConfigError(
            f"{field}: unknown backbone {backbone!r}; known: {', '.join(known)}, clip:<arch>:<path>"
        )


def _check_root(field: str, name: str, root: str | None) -> None:
    if root is not None and not Path(root).expanduser().exists():
        raise ConfigError(f"{field}.root: dataset root {root!r} of {name!r} does not exist")


def expand(spec: SuiteSpec, *, check_roots: bool = True) -> list[Cell]:
    """All cells of ``spec``, in a stable order (dataset, method, budget, seed).

    Budgets a method does not support are skipped.

    Args:
        spec: the suite.
        check_roots: also check that each dataset's root is available.

    Returns:
        The cells.

    Raises:
        ConfigError: the suite does not check out (see :func:`check_suite`), or two cells
            have the same identity.
    """
    check_suite(spec, check_roots=check_roots)
    cells: list[Cell] = []
    for dataset_label, dataset in spec.datasets.items():
        for label, method in spec.methods.items():
            method_class = _method_class(label, method.method)
            supported = tuple(getattr(method_class, "supported_budgets", ()))
            for variant_label, config in _variants(label, method.config, method.sweep):
                resolved = resolve_method_config(variant_label, method_class, config)
                for budget in spec.budgets:
                    mode = budget if isinstance(budget, str) else "private"
                    if mode not in supported:
                        continue  # e.g. a method without a public-only mode has no such row
                    for seed in spec.seeds:
                        cells.append(
                            _make_cell(
                                spec,
                                dataset_label,
                                dataset,
                                variant_label,
                                method_class,
                                resolved,
                                budget,
                                seed,
                            )
                        )
    ids = [cell.cell_id for cell in cells]
    if len(set(ids)) != len(ids):
        raise ConfigError(f"suite {spec.name}: two cells have the same identity")
    return cells


def _make_cell(
    spec: SuiteSpec,
    dataset_label: str,
    dataset: DatasetSpec,
    method_label: str,
    method_class: Any,
    method_config: dict[str, Any],
    budget: float | str,
    seed: int,
) -> Cell:
    fields: dict[str, Any] = {
        "suite": spec.name,
        "imports": list(spec.imports),
        "dataset_label": dataset_label,
        "dataset": dataset,
        "method_label": method_label,
        "method_name": method_class.name,
        "method_version": str(getattr(method_class, "version", "1")),
        "method_config": method_config,
        "budget": budget_label(budget),
        "epsilon": None if isinstance(budget, str) else float(budget),
        "delta_rule": spec.delta,
        "seed": seed,
        "n_samples": spec.n_samples,
        "extraction_samples": spec.extraction_samples if _needs(spec, "extraction") else 0,
        "open_prompt_samples": spec.open_prompt_samples if _needs(spec, "open_prompt") else 0,
        "metrics": spec.metrics,
        "metric_versions": _bumped_metric_versions(spec),
        "cross_check_accountants": list(spec.cross_check_accountants),
        "secure": spec.runtime.secure,
        "store": spec.store,
    }
    draft = Cell(cell_id="pending", **fields)
    return Cell(cell_id=content_key(cell_identity(draft), length=CELL_ID_LENGTH), **fields)


def _bumped_metric_versions(spec: SuiteSpec) -> dict[str, str]:
    versions = {
        name: str(getattr(registry.get("isoeps.metrics", name), "version", "1"))
        for name in spec.metrics
    }
    return {name: version for name, version in versions.items() if version != "1"}


def _needs(spec: SuiteSpec, what: str) -> bool:
    """Whether any metric of ``spec`` declares ``what`` among its ``needs``."""
    return any(
        what in getattr(registry.get("isoeps.metrics", name), "needs", ()) for name in spec.metrics
    )


def find_cell(cells: list[Cell], cell_id: str) -> Cell:
    """The one cell whose id starts with ``cell_id``.

    Args:
        cells: the suite's cells.
        cell_id: a cell id or a unique prefix of one.

    Returns:
        The cell.

    Raises:
        ConfigError: no cell, or more than one, matches.
    """
    matches = [cell for cell in cells if cell.cell_id.startswith(cell_id)]
    if len(matches) != 1:
        raise ConfigError(
            f"--id {cell_id!r}: {'no cell' if not matches else 'several cells'} match "
            f"(the suite has {len(cells)} cells)"
        )
    return matches[0]


def select(cells: list[Cell], only: str | None) -> list[Cell]:
    """Filter by ``--only key=value[,key=value]`` over dataset, method, budget and seed.

    Values of one key are alternatives; different keys must all match (``id`` is the cell id).

    Args:
        cells: the cells.
        only: the filter; None or empty keeps every cell.

    Returns:
        The matching cells, in order.

    Raises:
        ConfigError: a part is not ``key=value`` with a known key.
    """
    if not only:
        return cells
    keys = {
        "dataset": "dataset_label",
        "method": "method_label",
        "budget": "budget",
        "seed": "seed",
        "id": "cell_id",
    }
    wanted: dict[str, set[str]] = {}
    for part in only.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in keys:
            raise ConfigError(f"--only {only!r}: expected key=value with key in {', '.join(keys)}")
        wanted.setdefault(keys[key], set()).add(_normalise(key, value.strip()))
    return [
        cell
        for cell in cells
        if all(
            _normalise_attr(attr, getattr(cell, attr)) in values for attr, values in wanted.items()
        )
    ]


def _normalise(key: str, value: str) -> str:
    if key == "budget" and value not in ("inf", "public"):
        try:
            number = float(value)
        except ValueError:
            return value
        return "inf" if math.isinf(number) else f"{number:g}"
    return value


def _normalise_attr(attr: str, value: Any) -> str:
    return str(value)
