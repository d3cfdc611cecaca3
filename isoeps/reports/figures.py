"""Figures (PNG + PDF) from the store alone: metric vs epsilon, sample grids, spectra."""

from __future__ import annotations

import json
import math
import textwrap
from pathlib import Path
from typing import Any

import numpy as np

from isoeps.reports.spec import ReportSpec
from isoeps.reports.tables import budget_order
from isoeps.results import stats
from isoeps.results.compare import seed_values, value_ci


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(figure: Any, stem: Path) -> list[Path]:
    plt = _plt()
    stem.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for ext in ("png", "pdf"):
        path = stem.with_suffix(f".{ext}")
        figure.savefig(path, dpi=150, bbox_inches="tight")
        paths.append(path)
    plt.close(figure)
    return paths


def _colour(spec: ReportSpec, method: str, index: int) -> str:
    return spec.colours.get(method, f"C{index % 10}")


#: Line style of each method's reference rows, drawn as horizontal bands in its colour.
REFERENCE_STYLES = {"inf": "--", "public": ":"}
#: The opacity of a CI band.
BAND_ALPHA = 0.18
#: What a method's bands are, as its legend entry says: t-CI over seeds, or with one seed the
#: value's own CI, or none.
BAND_T, BAND_VALUE, BAND_NONE = "t", "value", "none"
_BAND_LABELS = {BAND_VALUE: " (n=1: its own CI)", BAND_NONE: " (n=1: no CI band)"}


#: Marks a method whose epsilon is replace-one (not comparable with add/remove epsilons).
REPLACE_ONE_MARK = "‡"


def replace_one_methods(frame: Any) -> set[str]:
    """Methods with a private row under replace-one adjacency."""
    if "adjacency" not in frame:
        return set()
    private = frame[~frame["budget"].isin(["inf", "public"])]
    return set(private[private["adjacency"] == "replace_one"]["method"])


def _method_legend(
    spec: ReportSpec,
    methods: list[str],
    replace_one: set[str] | None = None,
    bands: dict[str, set[str]] | None = None,
) -> list[Any]:
    """One entry per method (its colour; replace-one methods marked; a method drawn without
    a t-CI band somewhere says which band it has), one per reference row style (in grey) and
    one for the bands."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    replace_one = replace_one or set()
    bands = bands or {}
    handles = [
        Line2D(
            [],
            [],
            color=_colour(spec, method, k),
            marker="s" if method in replace_one else "o",
            label=spec.name(method)
            + (f" {REPLACE_ONE_MARK} replace-one ε" if method in replace_one else "")
            + "".join(_BAND_LABELS[b] for b in sorted(bands.get(method, ())) if b != BAND_T),
        )
        for k, method in enumerate(methods)
    ]
    handles += [
        Line2D(
            [],
            [],
            color="grey",
            linestyle=style,
            linewidth=1,
            label=f"{budget} row and its band (method's colour)",
        )
        for budget, style in REFERENCE_STYLES.items()
    ]
    handles.append(
        Patch(color="grey", alpha=BAND_ALPHA, label="95% CI band (t over seeds unless noted)")
    )
    return handles


def _interval(rows: Any) -> tuple[float, float, float, str]:
    """(mean, low, high, band kind) of one point's rows: the t-CI over seeds; with one seed
    the value's own CI if it has one, else no band (NaN bounds)."""
    values = list(seed_values(rows).values())
    if not values:
        return math.nan, math.nan, math.nan, BAND_NONE
    interval = stats.t_interval(values)
    if interval.half_width is not None:
        return interval.mean, interval.low, interval.high, BAND_T
    own = value_ci(rows)
    if own is not None:
        return interval.mean, own[0], own[1], BAND_VALUE
    return interval.mean, math.nan, math.nan, BAND_NONE


def metric_vs_epsilon(frame: Any, out: Path, spec: ReportSpec) -> list[Path]:
    """One figure per dataset: a panel per metric, a line per method over private epsilon with
    its 95% CI band (t over seeds; with one seed the value's own CI, or no band, as the legend
    says); the method's ``public`` (dotted) and ``inf`` (dashed) rows are horizontal lines
    with their own bands, in its colour.

    Args:
        frame: the tidy frame of the rows to draw.
        out: the figure folder.
        spec: which metrics to draw, in which order, and the names and colours.

    Returns:
        The files written (PNG and PDF of each figure).
    """
    plt = _plt()
    written = []
    for dataset in dict.fromkeys(frame["dataset"]):
        part = frame[frame["dataset"] == dataset]
        metrics = list(dict.fromkeys(part["metric"]))
        if spec.metrics is not None:
            metrics = [m for m in spec.metrics if m in metrics]
        if not metrics:
            continue
        methods = list(dict.fromkeys(part["method"]))
        replace_one = replace_one_methods(part)
        cols = min(3, len(metrics))
        rows = -(-len(metrics) // cols)
        figure, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
        bands: dict[str, set[str]] = {}
        for axis, metric in zip(axes.flat, metrics):
            sel = part[part["metric"] == metric]
            for method, kinds in _metric_panel(axis, sel, metric, methods, spec, replace_one):
                bands.setdefault(method, set()).update(kinds)
        spare = list(axes.flat)[len(metrics) :]
        for axis in spare:
            axis.axis("off")
        _legend_and_title(
            figure,
            spare,
            _method_legend(spec, methods, replace_one, bands),
            f"{dataset}: metrics vs ε (mean and 95% CI band: t over seeds; one seed: the "
            "value's own CI where it has one)",
        )
        written += _save(figure, out / f"metrics_vs_eps_{_slug(dataset)}")
    return written


def _metric_panel(
    axis: Any, sel: Any, metric: str, methods: list[str], spec: ReportSpec, replace_one: set[str]
) -> list[tuple[str, set[str]]]:
    """One metric's panel: each method's private rows over epsilon with their CI band, and
    its reference rows as horizontal lines with theirs. Returns each method's band kinds."""
    higher = bool(sel["higher_is_better"].iloc[0])
    kinds = []
    for k, method in enumerate(methods):
        mine = sel[sel["method"] == method]
        colour = _colour(spec, method, k)
        private = mine[~mine["budget"].isin(["inf", "public"])]
        drawn = set()
        if len(private):
            points = [(e, *_interval(g)) for e, g in private.groupby("epsilon", sort=True)]
            eps, mean, low, high, kind = zip(*points)
            axis.plot(eps, mean, marker="s" if method in replace_one else "o", color=colour)
            if len(eps) > 1:
                axis.fill_between(eps, low, high, color=colour, alpha=BAND_ALPHA, linewidth=0)
            else:  # a band needs two points: one ε gets an error bar
                yerr = [[mean[0] - low[0]], [high[0] - mean[0]]]
                axis.errorbar(eps, mean, yerr=yerr, color=colour, capsize=3, linestyle="none")
            drawn.update(kind)
        for budget, style in REFERENCE_STYLES.items():
            ref = mine[mine["budget"] == budget]
            if len(ref):
                mean, low, high, kind = _interval(ref)
                axis.axhline(mean, linestyle=style, color=colour, linewidth=1)
                if not math.isnan(low):
                    axis.axhspan(low, high, color=colour, alpha=BAND_ALPHA / 2, linewidth=0)
                drawn.add(kind)
        kinds.append((method, drawn))
    axis.set_xscale("log")
    axis.set_xlabel(
        "ε (per-image, add/remove"
        + (f"; {REPLACE_ONE_MARK} replace-one, not comparable)" if replace_one else ")")
    )
    axis.set_ylabel(f"{spec.name(metric)} ({'higher' if higher else 'lower'} is better)")
    axis.set_title(spec.name(metric), fontsize=9)
    return kinds


def _legend_and_title(figure: Any, spare: list[Any], handles: list[Any], title: str) -> None:
    """The legend in the first empty panel (else above the panels), the title, the layout."""
    height = figure.get_figheight()  # inches: margins below are fixed in inches
    if spare:  # the legend fills the first empty panel
        spare[0].legend(handles=handles, loc="center", fontsize=8, frameon=False)
        legend_rows = 0
    else:
        legend_rows = -(-len(handles) // 5)
        figure.legend(
            handles=handles,
            loc="upper center",
            ncol=min(len(handles), 5),
            fontsize=8,
            frameon=False,
            bbox_to_anchor=(0.5, 1 - 0.3 / height),
        )
    figure.suptitle(title, fontsize=10, y=1 - 0.05 / height)
    figure.tight_layout(rect=(0, 0, 1, 1 - (0.28 + 0.18 * legend_rows) / height))


def sample_grids(
    cells: list[tuple[dict[str, Any], Path]],
    out: Path,
    spec: ReportSpec,
    *,
    columns: int = 8,
    open_prompt: bool = False,
) -> list[Path]:
    """One figure per dataset: a row per (method, budget) at the lowest seed, the same
    prompts in every column (the runner picks prompts from the cell seed alone). With
    ``open_prompt``, the samples drawn from the open prompt (what style capture reads).

    Args:
        cells: ``(cell.json content, samples file)`` of each finished cell.
        out: the folder the figures are written to.
        spec: the report spec (method order, names, and which methods to show).
        columns: the most samples per row.
        open_prompt: plot the open-prompt samples, without captions.

    Returns:
        The files written (PNG and PDF per figure).
    """
    plt = _plt()
    by_dataset: dict[str, dict[tuple[str, str], tuple[int, Path]]] = {}
    for cell, path in cells:
        key = (cell["method_label"], cell["budget"])
        entry = by_dataset.setdefault(cell["dataset_label"], {})
        if key not in entry or cell["seed"] < entry[key][0]:
            entry[key] = (cell["seed"], path)
    written = []
    for dataset, entries in by_dataset.items():
        keys = sorted(entries, key=lambda k: (_method_rank(spec, k[0]), budget_order(k[1])))
        if spec.methods is not None:
            keys = [k for k in keys if k[0] in spec.methods]
        if not keys:
            continue
        loaded = {k: np.load(entries[k][1]) for k in keys}
        width = min(columns, min(len(v["images"]) for v in loaded.values()))
        figure, axes = plt.subplots(
            len(keys), width, figsize=(1.3 * width + 1.6, 1.4 * len(keys) + 0.9), squeeze=False
        )
        captions = (
            [""] * width
            if open_prompt
            else [str(c) for c in loaded[keys[0]]["eval_captions"][:width]]
        )
        for r, key in enumerate(keys):
            images = loaded[key]["images"]
            for c in range(width):
                axis = axes[r, c]
                axis.imshow(images[c].transpose(1, 2, 0), interpolation="nearest")
                axis.set_xticks([])
                axis.set_yticks([])
                if r == 0:
                    axis.set_title("\n".join(textwrap.wrap(captions[c], 18)[:4]), fontsize=5)
            budget = f"ε={key[1]}" + ("\n(not DP)" if key[1] == "inf" else "")
            axes[r, 0].set_ylabel(
                f"{spec.name(key[0])}\n{budget}", fontsize=7, rotation=0, ha="right", va="center"
            )
        title = (
            "open prompt (no attribute named): what each model learned"
            if open_prompt
            else "samples per method and ε (same prompts per column)"
        )
        figure.suptitle(f"{dataset}: {title}", fontsize=9)
        figure.tight_layout(rect=(0, 0, 1, 1 - 0.35 / figure.get_figheight()))  # room for the title
        stem = "samples_open_prompt" if open_prompt else "samples"
        written += _save(figure, out / f"{stem}_{_slug(dataset)}")
    return written


def spectra(frame: Any, out: Path, spec: ReportSpec) -> list[Path]:
    """The frequency-fidelity comparison per dataset, from the spectrum metric's details:
    left, the radially averaged log10 power spectra of real reference images and of each
    method/budget's samples (lowest seed); right, the log10 energy ratio fake/real of every
    wavelet detail band (0 is perfect; mean over seeds).

    Args:
        frame: the tidy frame; only its ``spectrum`` rows are read.
        out: the figure folder.
        spec: which methods to draw, in which order, and their names.

    Returns:
        The files written (PNG and PDF of each figure).
    """
    plt = _plt()
    part = frame[frame["metric_group"] == "spectrum"]
    written = []
    for dataset in dict.fromkeys(part["dataset"]):
        profiles, bands = _spectrum_details(part[part["dataset"] == dataset])
        if not profiles and not bands:
            continue
        keys = sorted(
            set(profiles) | set(bands), key=lambda k: (_method_rank(spec, k[0]), budget_order(k[1]))
        )
        if spec.methods is not None:
            keys = [k for k in keys if k[0] in spec.methods]
        figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        _profile_panel(left, [k for k in keys if k in profiles], profiles, spec)
        _band_panel(right, [k for k in keys if k in bands], bands, spec)
        figure.suptitle(f"{dataset}: frequency fidelity", fontsize=10)
        figure.tight_layout()
        written += _save(figure, out / f"spectra_{_slug(dataset)}")
    return written


def _spectrum_details(sel: Any) -> tuple[dict, dict]:
    """(method, budget) -> (real, fake) radial profiles at the lowest seed, and -> the band
    energy ratios of every seed."""
    profiles, bands = {}, {}
    for _, row in sel.sort_values("seed").iterrows():
        details = json.loads(row["details"] or "{}")
        key = (row["method"], row["budget"])
        if "log10_profile_fake" in details and key not in profiles:
            profiles[key] = (details["log10_profile_real"], details["log10_profile_fake"])
        if "log10_energy_ratio" in details:
            bands.setdefault(key, []).append(details["log10_energy_ratio"])
    return profiles, bands


def _profile_panel(left: Any, keys: list, profiles: dict, spec: ReportSpec) -> None:
    """The radial power spectra: the real one (once, in black), then each key's samples'."""
    real_drawn = False
    for k, key in enumerate(keys):
        real, fake = profiles[key]
        if not real_drawn:
            left.plot(
                range(1, len(real) + 1),
                real,
                color="black",
                linewidth=2.5,
                label="real (reference)",
            )
            real_drawn = True
        left.plot(
            range(1, len(fake) + 1),
            fake,
            linewidth=1,
            color=f"C{k % 10}",
            linestyle=":" if key[1] == "public" else "-",
            label=f"{spec.name(key[0])} ε={key[1]}",
        )
    left.set_xlabel("radial spatial frequency (cycles per image)")
    left.set_ylabel("log10 mean power")
    left.set_title("radially averaged power spectrum", fontsize=9)
    left.legend(fontsize=6)


def _band_panel(right: Any, band_keys: list, bands: dict, spec: ReportSpec) -> None:
    """Grouped bars of each key's mean log10 band-energy ratio (the panel is off without any)."""
    if not band_keys:
        right.axis("off")
        return
    names = list(bands[band_keys[0]][0])
    width = 0.8 / len(band_keys)
    for k, key in enumerate(band_keys):
        means = [float(np.mean([b.get(n, np.nan) for b in bands[key]])) for n in names]
        right.bar(
            np.arange(len(names)) + k * width,
            means,
            width,
            color=f"C{k % 10}",
            label=f"{spec.name(key[0])} ε={key[1]}",
        )
    right.axhline(0, color="black", linewidth=0.8)
    right.set_xticks(np.arange(len(names)) + 0.4 - width / 2)
    right.set_xticklabels(names, rotation=45, fontsize=7, ha="right")
    right.set_ylabel("log10(energy fake / real)")
    right.set_title("wavelet band energy (0 = matches real)", fontsize=9)
    right.legend(fontsize=6)


def memorisation_pairs(
    pairs: list[tuple[dict[str, Any], Path]], out: Path, *, count: int = 8
) -> list[Path]:
    """The closest (sample, private training image) pairs. Only called with --show-private.

    One figure per cell: the samples on top, their nearest private images below.

    Args:
        pairs: ``(cell.json content, pairs file)`` of each cell that kept closest pairs.
        out: the folder the figures are written to.
        count: the most pairs per figure, closest first.

    Returns:
        The files written (PNG and PDF per figure).
    """
    plt = _plt()
    written = []
    for cell, path in pairs:
        data = np.load(path)
        order = np.argsort(data["distances"])[:count]
        if not len(order):
            continue
        figure, axes = plt.subplots(2, len(order), figsize=(1.3 * len(order), 3), squeeze=False)
        for c, i in enumerate(order):
            axes[0, c].imshow(data["samples"][i].transpose(1, 2, 0))
            axes[1, c].imshow(data["private"][i].transpose(1, 2, 0))
            axes[0, c].set_title(f"d={data['distances'][i]:.3g}", fontsize=6)
            for r in (0, 1):
                axes[r, c].set_xticks([])
                axes[r, c].set_yticks([])
        axes[0, 0].set_ylabel("sample", fontsize=7)
        axes[1, 0].set_ylabel("nearest\nprivate", fontsize=7)
        figure.suptitle(
            f"{cell['method_label']} ε={cell['budget']}: closest pairs (PRIVATE TRAINING IMAGES)",
            fontsize=8,
        )
        figure.tight_layout()
        written += _save(
            figure,
            out / f"memorisation_{_slug(cell['dataset_label'])}_"
            f"{_slug(cell['method_label'])}_{cell['budget']}",
        )
    return written


def _method_rank(spec: ReportSpec, method: str) -> tuple[int, str]:
    if spec.methods and method in spec.methods:
        return (spec.methods.index(method), method)
    return (len(spec.methods or []), method)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in str(text))
