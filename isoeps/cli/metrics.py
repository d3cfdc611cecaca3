"""``isoeps metrics list|compute``: evaluate a folder, a .npz or a dataset split.

``--protocol dpimagebench`` computes DPImageBench's numbers instead (its ``evaluator.py`` at
565f8d7): ``fid``, ``pr``, ``is`` and ``utility`` mean the ``dpimagebench-`` metrics;
``--real NAME`` is the dataset whose sensitive train split (``NAME:private``) is the FID / P/R
reference, whose test split (``NAME:reference``) is the test set, and whose ``validation`` split
is the sensitive validation set; a float ``--fake`` .npz is truncated to uint8 as DPImageBench's
``ToPILImage`` does.
"""

from __future__ import annotations

import argparse

DEFAULT_METRICS = "fid,kid,pr"
PROTOCOLS = ("isoeps", "dpimagebench")
#: The default metrics per protocol (DPImageBench's IS needs local fc weights, so it is opt-in).
PROTOCOL_DEFAULTS = {"isoeps": DEFAULT_METRICS, "dpimagebench": "fid,pr"}
#: The names ``--protocol dpimagebench`` maps to its own metrics.
DPIMAGEBENCH_METRICS = {
    "fid": "dpimagebench-fid",
    "pr": "dpimagebench-pr",
    "is": "dpimagebench-is",
    "utility": "dpimagebench-utility",
}


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
        "--validation",
        metavar="SRC",
        help="sensitive validation split (dpimagebench-utility); default: NAME:validation",
    )
    compute.add_argument(
        "--metrics",
        help=f"comma list (default {DEFAULT_METRICS}; --protocol dpimagebench: "
        f"{PROTOCOL_DEFAULTS['dpimagebench']})",
    )
    _add_protocol_arguments(compute)
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


def _add_protocol_arguments(compute: argparse.ArgumentParser) -> None:
    """The flags of ``--protocol dpimagebench``."""
    compute.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default="isoeps",
        help="isoeps (default) or dpimagebench: fid, pr, is, utility as DPImageBench computes "
        "them, against --real's private (train) split",
    )
    compute.add_argument(
        "--epsilon",
        type=float,
        help="the samples' target epsilon (DPImageBench's noisy epoch selection in utility)",
    )
    compute.add_argument(
        "--pt-inception-weights",
        metavar="PATH",
        help="pytorch-fid's pt_inception-2015-12-05-6726825d.pth (its fc layer: dpimagebench is)",
    )


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


def metric_names(spec: str | None, *, protocol: str) -> list[str]:
    """The registry names ``--metrics`` asks for under ``protocol``.

    Args:
        spec: the comma list (None: the protocol's default).
        protocol: ``"isoeps"`` or ``"dpimagebench"``.

    Returns:
        Registry names; under dpimagebench, ``fid``/``pr``/``is``/``utility`` become their
        ``dpimagebench-`` versions.

    Raises:
        ConfigError: no name, a name outside DPImageBench's protocol, FLD / ImageReward (not
            available offline), or a protocol metric that is not registered.
    """
    from isoeps import registry
    from isoeps.errors import ConfigError

    names = [m.strip() for m in (spec or PROTOCOL_DEFAULTS[protocol]).split(",") if m.strip()]
    if not names:
        raise ConfigError("--metrics: no metric named")
    if protocol != "dpimagebench":
        return names
    from isoeps.metrics.dpimagebench.fidelity import NOT_AVAILABLE, not_available

    mapped = []
    for name in names:
        short = name.removeprefix("dpimagebench-")
        if short in NOT_AVAILABLE:
            raise not_available(short)
        if short not in DPIMAGEBENCH_METRICS:
            raise ConfigError(
                f"--metrics {name!r} is not part of --protocol dpimagebench; "
                f"known: {', '.join(DPIMAGEBENCH_METRICS)}"
            )
        full = DPIMAGEBENCH_METRICS[short]
        if full not in registry.names("isoeps.metrics"):
            raise ConfigError(
                f"--metrics {name}: --protocol dpimagebench maps it to {full!r}, which is not "
                "registered (is isoeps installed with that metric? pip install -e .)"
            )
        mapped.append(full)
    return mapped


def _build(name: str, args: argparse.Namespace):
    from isoeps import registry

    cls = registry.get("isoeps.metrics", name)
    options: dict = {"device": args.device}
    if name in ("fid", "kid", "pr"):
        options.update(backbone=args.backbone, weights=args.inception_weights)
    elif name == "clip":
        options.update(backbone=args.clip_backbone)
    elif name.startswith("dpimagebench-"):
        # Each protocol metric gets the flags its options declare (utility has no weights).
        fields = getattr(getattr(cls, "Options", None), "model_fields", {})
        flags = {
            "device": args.device,
            "weights": args.inception_weights,
            "inception_fc_weights": args.pt_inception_weights,
        }
        options = {k: v for k, v in flags.items() if k in fields and v is not None}
    return cls(**options)


def _protocol_splits(args: argparse.Namespace, needs: set[str]) -> dict:
    """``private``, ``reference`` and ``validation`` under ``--protocol dpimagebench``.

    A dataset ``--real NAME`` gives its private (sensitive train), reference (test) and
    validation splits; a folder or .npz ``--real`` is the sensitive train set and stands in for
    the test set (which only utility reads). ``--private`` / ``--validation`` override; every
    split is capped by ``--n``.
    """
    from pathlib import Path

    from isoeps.errors import ConfigError
    from isoeps.metrics.sources import load_source, parse_dataset

    is_path = Path(args.real).expanduser().exists()
    dataset, split = parse_dataset(args.real, default_split="")
    if not is_path and split:
        raise ConfigError(
            f"--real {args.real!r}: under --protocol dpimagebench, --real names a dataset "
            f"(its private, reference and validation splits are used); use --real {dataset}"
        )
    common = {"resolution": args.resolution, "n": args.n, "seed": args.seed}

    def load(role: str, explicit: str | None = None):
        if explicit:
            return load_source(explicit, role=role, **common)
        if is_path:
            return load_source(args.real, role=role, **common) if role != "validation" else None
        return load_source(f"{dataset}:{role}", role=role, **common)

    return {
        "private": load("private", args.private) if "private" in needs else None,
        "reference": load("reference"),
        "validation": load("validation", args.validation) if "validation" in needs else None,
    }


def _inputs(args: argparse.Namespace, metrics: dict, names: list[str]):
    from isoeps.metrics.base import MetricInputs
    from isoeps.metrics.sources import load_source

    protocol = args.protocol == "dpimagebench"
    needs = set().union(*(m.needs for m in metrics.values()))
    common = {"resolution": args.resolution, "n": args.n, "seed": args.seed}
    # The real set first, then the samples: an error names --real before --fake, as before.
    splits = (
        _protocol_splits(args, needs)
        if protocol
        else {"reference": load_source(args.real, role="real", **common)}
    )
    quantise = "truncate" if protocol else "round"
    fake = load_source(args.fake, role="fake", quantise=quantise, **common)
    captions = (
        _read_captions(args.captions, n=len(fake))
        if args.captions
        else [c[0] for c in fake.captions]
    )
    if not protocol and ("private" in needs or "mem" in names):
        splits["private"] = _split_for(args, args.private, "private")
    inputs = MetricInputs(
        fake=fake.images,
        fake_captions=captions if all(captions) else [],
        fake_attributes=fake.attributes,
        eval=_split_for(args, args.eval, "eval") if "eval" in needs else None,
        epsilon=args.epsilon,
        seed=args.seed,
        device=args.device,
        **splits,
    )
    return inputs, fake


def _compute(args: argparse.Namespace) -> int:
    import time

    from isoeps.cli._common import emit

    names = metric_names(args.metrics, protocol=args.protocol)
    metrics = {name: _build(name, args) for name in names}  # unknown names fail before any work
    inputs, fake = _inputs(args, metrics, names)
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
    for label, split in (("real", inputs.reference), ("fake", fake)):
        if split.info.get("resized"):
            lines.append(f"note: {label} images resized: {split.info['resized']}")
    payload = {"real": args.real, "fake": args.fake, "protocol": args.protocol, "values": rows}
    emit(args, payload, "\n".join(lines))
    return 0
