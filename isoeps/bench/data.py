"""Loading one cell's four splits: private, reference and eval from the dataset, public from
the named public corpus (or the dataset's own public split); and the sensitive validation split
when a metric asks for it (DPImageBench's epoch selection)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from isoeps.bench.spec import DatasetSpec

EVAL_SPLITS: tuple[str, ...] = ("private", "reference", "eval")


@dataclass
class CellData:
    private: Any
    reference: Any
    eval: Any
    public: Any
    validation: Any = None

    def fingerprints(self) -> dict[str, str]:
        splits = ["private", "reference", "eval", "public"]
        if self.validation is not None:
            splits.append("validation")
        return {split: getattr(self, split).fingerprint() for split in splits}


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


#: The last embedded dataset's splits, kept for the next cell of the same process: rendering
#: 40,000 synthetic images took 13-19 s of every cell (benchmarks/RESULTS.md). One entry; the
#: cell's own frame holds the same splits while it runs (the guard's trust model, DESIGN 11).
_EMBEDDED_MEMO: dict[tuple[Any, ...], CellData] = {}


def load_cell_data(spec: DatasetSpec, *, validation: bool = False) -> CellData:
    """The four splits of one dataset spec, and its validation split when ``validation``.

    When the public corpus is this dataset's own public split, they load in one call, so
    their disjointness is checked together. Embedded sources (no ``root``: rendered from
    code and seed) are rendered once per process: the next call with the same spec returns
    the same read-only splits in a new :class:`CellData`. Sources read from disk load afresh.

    Args:
        spec: the dataset spec of the suite.
        validation: also load the ``validation`` split.

    Returns:
        The private, reference, eval, public and (optionally) validation splits.

    Raises:
        DataError: two splits share an image id or identical pixels, or data cannot be read.
    """
    key = _memo_key(spec, validation)
    if key is not None and key in _EMBEDDED_MEMO:
        return dataclasses.replace(_EMBEDDED_MEMO[key])
    data = _load_cell_data(spec, validation=validation)
    if key is not None:
        for field in dataclasses.fields(data):
            if getattr(data, field.name) is not None:
                _freeze(getattr(data, field.name))
        _EMBEDDED_MEMO.clear()
        _EMBEDDED_MEMO[key] = data
        return dataclasses.replace(data)
    return data


def _memo_key(spec: DatasetSpec, validation: bool) -> tuple[Any, ...] | None:
    """The memo key of an all-embedded spec (the source classes included, so that a source
    registered anew under the same name is not served stale images); None otherwise."""
    from isoeps import registry
    from isoeps.datasets.api import GROUP

    names = [spec.name] + ([spec.public.name] if spec.public is not None else [])
    classes = [registry.get(GROUP, name) for name in names]
    if any("root" in cls.Config.model_fields for cls in classes):
        return None
    return (spec.model_dump_json(), validation, tuple(id(cls) for cls in classes))


def _freeze(split: Any) -> None:
    """Make a memoised split's arrays read-only: a cell that edits them would edit the next."""
    split.images.setflags(write=False)
    for values in (split.attributes or {}).values():
        if isinstance(values, np.ndarray):
            values.setflags(write=False)


def _load_cell_data(spec: DatasetSpec, *, validation: bool) -> CellData:
    own_splits = [*EVAL_SPLITS, "validation"] if validation else list(EVAL_SPLITS)
    n: dict[str, int | None] = {split: spec.n.get(split) for split in own_splits}
    public = spec.public
    same_source = public is None or (
        public.name == spec.name
        and public.options == spec.options
        and (public.root or spec.root) == spec.root
    )
    splits = list(own_splits)
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
        namespaces = {split: spec.name for split in own_splits}
        namespaces["public"] = public.name
        check_disjoint(loaded, id_namespaces=namespaces)
    return CellData(
        private=loaded["private"],
        reference=loaded["reference"],
        eval=loaded["eval"],
        public=loaded["public"],
        validation=loaded.get("validation"),
    )
