"""Does a metric order the budgets public > epsilon > inf, and by how many standard deviations?

    .venv/bin/python benchmarks/budget_ordering.py --results STORE [--metric attr_tv] [--sigmas 2]

Reads the finished cells of a store (``isoeps run ... --results STORE``) and prints, per dataset
and method, a Markdown table: the metric's mean +- std over seeds at every budget, then for each
private epsilon its distance from the ``public`` row and from the ``inf`` row, each in units of
the larger of the two stds, and whether both exceed ``--sigmas`` in the direction "public is
worst, inf is best" (the metric's own ``higher_is_better`` decides which way is better).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from isoeps.results.frame import rows_from_folders, to_frame


def _gap(better: pd.Series, worse: pd.Series, higher_is_better: bool) -> tuple[float, float]:
    """How much better ``better`` is than ``worse`` (mean), and that in units of the larger
    std (NaN when either side has fewer than two seeds: one seed has no spread to compare)."""
    diff = better["mean"] - worse["mean"]
    diff = diff if higher_is_better else -diff
    if min(better["count"], worse["count"]) < 2:
        return diff, float("nan")
    spread = max(better["std"], worse["std"])
    return diff, (diff / spread if spread > 0 else float("inf") * (1 if diff > 0 else -1))


def _show(gap: tuple[float, float]) -> str:
    diff, in_std = gap
    return f"{diff:+.4f} ({'one seed' if pd.isna(in_std) else f'{in_std:.1f} std'})"


def ordering_tables(frame: pd.DataFrame, *, metric: str, sigmas: float) -> str:
    part = frame[frame["metric"] == metric]
    if part.empty:
        raise SystemExit(f"no finished cell in the store has metric {metric!r}")
    higher = bool(part["higher_is_better"].iloc[0])
    lines = []
    for (dataset, method), rows in part.groupby(["dataset", "method"], sort=False):
        stats = rows.groupby("budget")["value"].agg(["mean", "std", "count"])
        stats["std"] = stats["std"].fillna(0.0)
        direction = "higher" if higher else "lower"
        lines += [
            f"### {dataset} / {method}: {metric} ({direction} is better), mean +- std over seeds",
            "",
            (
                "| budget | value | seeds | better than public by | worse than inf by | "
                f"public > eps > inf, each > {sigmas:g} std |"
            ),
            "|---|---|---|---|---|---|",
        ]
        private = sorted((b for b in stats.index if b not in ("inf", "public")), key=float)
        for budget in [*private, "inf", "public"]:
            if budget not in stats.index:
                continue
            row = stats.loc[budget]
            cells = [budget, f"{row['mean']:.4f} +- {row['std']:.4f}", str(int(row["count"]))]
            if budget in private and {"inf", "public"} <= set(stats.index):
                over_public = _gap(row, stats.loc["public"], higher)
                under_inf = _gap(stats.loc["inf"], row, higher)
                if pd.isna(over_public[1]) or pd.isna(under_inf[1]):
                    holds = "needs >= 2 seeds"
                else:
                    holds = "yes" if min(over_public[1], under_inf[1]) > sigmas else "no"
                cells += [_show(over_public), _show(under_inf), holds]
            else:
                cells += ["", "", ""]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, required=True, help="the store folder")
    parser.add_argument("--metric", default="attr_tv")
    parser.add_argument("--sigmas", type=float, default=2.0)
    args = parser.parse_args()
    frame = to_frame(rows_from_folders(args.results))
    print(ordering_tables(frame, metric=args.metric, sigmas=args.sigmas))


if __name__ == "__main__":
    main()
