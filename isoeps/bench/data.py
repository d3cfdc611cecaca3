"""Loading one cell's four splits: private, reference and eval from the dataset, public from
the named public corpus (or the dataset's own public split)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from isoeps.bench.spec import DatasetSpec

EVAL_SPLITS: tuple[str, ...] = ("private", "reference", "eval")


@dataclass
class CellData:
    private: Any
    reference: Any
    eval: Any
    public: Any

    def fingerprints(self) -> dict[str, str]:
        return {
            split: getattr(self, split).fingerprint()
            for split in ("private", "reference", "eval", "public")
        }


def _load(
    name: str,
    splits: list[str],
    *,
    resolution: int,
    n: dict[str, int | None],
    seed: int,
    root: str | None,
    options: dict[str, Any],
) -> dict[str, Any]:
    """Through :func:`isoeps.datasets.load_splits`, which checks that splits are disjoint."""
    from isoeps.datasets import load_splits

    return load_splits(
        name, splits, resolution=resolution, n=n, seed=seed, root=root, options=options
    )


def load_cell_data(spec: DatasetSpec) -> CellData:
    """The four splits of one dataset spec. When the public corpus is this dataset's own
    public split, all four load in one call, so their disjointness is checked together."""
    n: dict[str, int | None] = {split: spec.n.get(split) for split in EVAL_SPLITS}
    public = spec.public
    same_source = public is None or (
        public.name == spec.name
        and public.options == spec.options
        and (public.root or spec.root) == spec.root
    )
    splits = list(EVAL_SPLITS)
    if same_source:
        splits.append("public")
        n["public"] = public.n if public is not None else None
    loaded = _load(
        spec.name,
        splits,
        resolution=spec.resolution,
        n=n,
        seed=spec.data_seed,
        root=spec.root,
        options=spec.options,
    )
    if not same_source:
        from isoeps.datasets import check_disjoint

        loaded["public"] = _load(
            public.name,
            ["public"],
            resolution=spec.resolution,
            n={"public": public.n},
            seed=spec.data_seed,
            root=public.root,
            options=public.options,
        )["public"]
        # Another source, or the same one with other options: check the public split against
        # the other three too (ids where they share the source's namespace, pixels always).
        namespaces = {split: spec.name for split in EVAL_SPLITS}
        namespaces["public"] = public.name
        check_disjoint(loaded, id_namespaces=namespaces)
    return CellData(
        private=loaded["private"],
        reference=loaded["reference"],
        eval=loaded["eval"],
        public=loaded["public"],
    )
