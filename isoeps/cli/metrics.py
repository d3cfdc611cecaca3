"""``isoeps metrics list|compute``: evaluate a folder, a .npz or a dataset split."""

from __future__ import annotations

import argparse

DEFAULT_METRICS = "fid,kid,pr"


def add_parser(subparsers: argparse._SubParsersAction, parent: argparse.ArgumentParser) -> None:
    parser = subparsers.add_parser("metrics", help="compute metrics on image sets")
    actions = parser.add_subparsers(dest="metrics_command", metavar="ACTION", required=True)
    actions.add_parser("list", parents=[parent], help="list metrics and backbones").set_defaults(
        handler=_list
    )
    compute = actions.add_parser(
        "compute",
        parents=[parent],
        help="compute metrics of --fake against --real",
        description="SRC is an image folder, a DPImageBench .npz, or a dataset NAME[:split].",
    )
    compute.add_argument("--real", required=True, metavar="SRC", help="real reference images")
    compute.add_argument("--fake", required=True, metavar="SRC", help="generated images")
    compute.add_argument("--captions", metavar="FILE", help="eval captions of --fake, one per line")
    compute.add_argument(
        "--eval",
        metavar="SRC",
        help="eval split (tiny-clip-eval, attr); default: NAME:eval of a dataset --real",
    )
    compute.add_argument(
        "--private",
        metavar="SRC",
        help="training split (mem, attr); default: NAME:private of a dataset --real",
    )
    compute.add_argument(
        "--metrics", default=DEFAULT_METRICS, help=f"comma list (default {DEFAULT_METRICS})"
    )
    compute.add_argument("--backbone", default="inception", help="feature backbone for fid,kid,pr")
    compute.add_argument(
        "--clip-backbone", default="tiny-clip-eval", help="backbone for clip (clip:<arch>:<path>)"
    )
    compute.add_argument("--inception-weights", metavar="PATH", help="Inception TorchScript file")
    compute.add_argument("--resolution", type=int, default=32, help="resolution for dataset SRCs")
    compute.add_argument("--n", type=int, help="use at most N images of each set")
    compute.add_argument("--seed", type=int, default=0)
    compute.add_argument("--device", default="cpu")
    compute.set_defaults(handler=_compute)


def _list(args: argparse.Namespace) -> int:
    from isoeps import registry
    from isoeps.cli._common import emit

    metrics = registry.names("isoeps.metrics")
    backbones = [
        *(b for b in registry.names("isoeps.backbones") if b != "clip"),
        "clip:<arch>:<path>",
    ]
    text = "metrics:   " + ", ".join(metrics) + "\nbackbones: " + ", ".join(backbones)
    emit(args, {"metrics": metrics, "backbones": backbones}, text)
    return 0


def _read_captions(path: str, *, n: int) -> list[str]:
    from pathlib import Path

    from isoeps.errors import DataError

    file = Path(path)
    if not file.is_file():
        raise DataError(f"--captions: {file} does not exist")
    lines = file.read_text(encoding="utf-8").splitlines()
    if len(lines) != n:
        raise DataError(f"--captions: {file} has {len(lines)} lines for {n} --fake images")
    return lines


def _split_for(args: argparse.Namespace, explicit: str | None, split: str):
    from pathlib import Path

    from isoeps.metrics.sources import load_source, parse_dataset

    if explicit:
        return load_source(explicit, role=split, resolution=args.resolution, seed=args.seed)
    if Path(args.real).expanduser().exists():
        return None
    name, _ = parse_dataset(args.real, default_split="reference")
    return load_source(f"{name}:{split}", role=split, resolution=args.resolution, seed=args.seed)


def _build(name: str, args: argparse.Namespace):
    from isoeps import registry

    cls = registry.get("isoeps.metrics", name)
    options: dict = {"device": args.device}
    if name in ("fid", "kid", "pr"):
        options.update(backbone=args.backbone, weights=args.inception_weights)
    elif name == "clip":
        options.update(backbone=args.clip_backbone)
    return cls(**options)


def _compute(args: argparse.Namespace) -> int:
    import time

    from isoeps.cli._common import emit
    from isoeps.errors import ConfigError
    from isoeps.metrics.base import MetricInputs
    from isoeps.metrics.sources import load_source

    names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    if not names:
        raise ConfigError("--metrics: no metric named")
    metrics = {name: _build(name, args) for name in names}  # unknown names fail before any work
    real = load_source(args.real, role="real", resolution=args.resolution, n=args.n, seed=args.seed)
    fake = load_source(args.fake, role="fake", resolution=args.resolution, n=args.n, seed=args.seed)
    captions = (
        _read_captions(args.captions, n=len(fake))
        if args.captions
        else [c[0] for c in fake.captions]
    )
    if not all(captions):
        captions = []
    needs = set().union(*(m.needs for m in metrics.values()))
    inputs = MetricInputs(
        fake=fake.images,
        fake_captions=captions,
        reference=real,
        fake_attributes=fake.attributes,
        eval=_split_for(args, args.eval, "eval") if "eval" in needs else None,
        private=_split_for(args, args.private, "private")
        if "private" in needs or "mem" in names
        else None,
        seed=args.seed,
        device=args.device,
    )
    rows, lines = [], []
    for metric in metrics.values():
        start = time.perf_counter()
        for value in metric.evaluate(inputs):
            row = value.to_dict()
            row["seconds"] = round(time.perf_counter() - start, 3)
            rows.append(row)
            std = f" ± {value.std:.4g}" if value.std is not None else ""
            backbone = f"  [{value.backbone}]" if value.backbone else ""
            lines.append(f"{value.name:<32} {value.value:.6g}{std}  n={value.n}{backbone}")
    for label, split in (("real", real), ("fake", fake)):
        if split.info.get("resized"):
            lines.append(f"note: {label} images resized: {split.info['resized']}")
    emit(args, {"real": args.real, "fake": args.fake, "values": rows}, "\n".join(lines))
    return 0
