"""``isoeps data list|inspect``: the registered datasets, and what a dataset's splits hold."""

from __future__ import annotations

import argparse

# isoeps.datasets.base.ALL_SPLITS, spelled out so that building the parser imports no dataset code.
SPLIT_CHOICES = ("public", "private", "reference", "eval", "validation")


def add_parser(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("data", help="list and inspect datasets")
    actions = parser.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    actions.add_parser("list", parents=[parent], help="list the registered datasets").set_defaults(
        handler=_list
    )
    inspect = actions.add_parser(
        "inspect",
        parents=[parent],
        help="counts, captions, attribute frequencies and the shift of a dataset's splits",
    )
    inspect.add_argument("name", help="dataset name (see `isoeps data list`)")
    inspect.add_argument("--root", help="dataset root (else the dataset's env var)")
    inspect.add_argument(
        "--split",
        action="append",
        choices=SPLIT_CHOICES,
        help="split to load (repeatable; default: every split the dataset has)",
    )
    inspect.add_argument("--resolution", type=int, default=32, help="image size (default 32)")
    inspect.add_argument(
        "--n",
        type=int,
        default=512,
        help="items per split to load (default 512; 0 = the full split)",
    )
    inspect.add_argument("--seed", type=int, default=0)
    inspect.add_argument(
        "--set",
        dest="options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a dataset option, value in YAML (e.g. --set shift=texture)",
    )
    inspect.add_argument("--grid", metavar="OUT.png", help="write a captioned sample grid")
    inspect.set_defaults(handler=_inspect)


def _list(args: argparse.Namespace) -> int:
    from isoeps import registry
    from isoeps.cli._common import emit
    from isoeps.datasets import dataset_names

    rows = []
    for name in dataset_names():
        cls = registry.get("isoeps.datasets", name)
        rows.append({"name": name, "description": getattr(cls, "description", "")})
    text = "\n".join(f"{r['name']:<18} {r['description']}" for r in rows)
    emit(args, {"datasets": rows}, text)
    return 0


def _parse_options(pairs: list[str]) -> dict:
    import yaml

    from isoeps.errors import ConfigError

    options: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects KEY=VALUE, got {pair!r}")
        options[key] = yaml.safe_load(value)
    return options


def _inspect(args: argparse.Namespace) -> int:
    from isoeps.cli._common import emit
    from isoeps.datasets import check_disjoint, get_source
    from isoeps.datasets.preview import captioned_grid, summary
    from isoeps.datasets.stats import total_variation

    source = get_source(args.name, root=args.root, options=_parse_options(args.options))
    splits = args.split or list(source.splits)
    available = {s: source.available(s) for s in splits}

    def count(split: str) -> int | None:
        # --n is an upper bound here: a small tree is shown whole rather than refused.
        if args.n == 0:
            return None
        return args.n if available[split] is None else min(args.n, available[split])

    loaded = {
        s: source.load(s, resolution=args.resolution, n=count(s), seed=args.seed) for s in splits
    }
    check_disjoint(loaded)
    payload = {
        "dataset": args.name,
        "source": source.describe(),
        "splits": {s: {**summary(split), "available": available[s]} for s, split in loaded.items()},
    }
    if "public" in loaded and "private" in loaded and loaded["private"].attributes:
        public = payload["splits"]["public"]["attribute_frequencies"]
        private = payload["splits"]["private"]["attribute_frequencies"]
        tv = {a: total_variation(public[a], private[a]) for a in private if a in public}
        payload["public_vs_private_tv"] = tv
    if args.grid:
        payload["grid"] = str(captioned_grid(loaded, args.grid))
    emit(args, payload, _text(payload))
    return 0


def _text(payload: dict) -> str:
    source = payload["source"]
    lines = [f"{payload['dataset']}: {source.get('description', '')}"]
    if "shift" in source:
        lines.append(f"shift: {source['shift']}  ({source['shift_description']})")
    if "default_sizes" in source:
        sizes = ", ".join(f"{k}={v}" for k, v in source["default_sizes"].items())
        lines.append(f"default sizes: {sizes}")
    if "classes" in source:
        lines.append(f"classes ({len(source['classes'])}): {', '.join(source['classes'])}")
    for split, rule in source.get("split_rules", {}).items():
        lines.append(f"  {split}: {rule}")
    for name, s in payload["splits"].items():
        cpi = s["captions_per_image"]
        of = "" if s["available"] is None else f" of {s['available']}"
        lines.append(
            f"\n[{name}] {s['count']}{of} images {'x'.join(map(str, s['shape']))}, captions per image "
            f"{cpi['mean']:.1f} (min {cpi['min']}, max {cpi['max']}); skipped {s['info'].get('skipped', 0)}"
        )
        if s["info"].get("padding"):
            lines.append(
                f"  zero-padded {s['info']['padding']} px per side from the native "
                f"{s['info'].get('native_resolution')}x{s['info'].get('native_resolution')}"
            )
        for caption in s["example_captions"]:
            lines.append(f"  e.g. {caption!r}")
        for attribute, freqs in s["attribute_frequencies"].items():
            shown = " ".join(f"{k}={v:.2f}" for k, v in freqs.items() if v > 0)
            lines.append(f"  {attribute:<14} {shown}")
    tv = payload.get("public_vs_private_tv")
    if tv:
        mean = sum(tv.values()) / len(tv)
        lines.append(
            f"\npublic vs private attribute TV distance: mean {mean:.2f} "
            f"({', '.join(f'{k} {v:.2f}' for k, v in tv.items())})"
        )
    if payload.get("grid"):
        lines.append(f"grid: {payload['grid']}")
    return "\n".join(lines)
