"""A ledger: the ordered list of mechanisms one release has spent."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from isoeps.accountants.mechanisms import Mechanism, NonPrivate, mechanism_from_dict


class Ledger:
    """An append-only, JSON round-trippable list of mechanisms."""

    def __init__(self, entries: Iterable[Mechanism] = ()) -> None:
        self._entries: list[Mechanism] = list(entries)

    def append(self, mechanism: Mechanism) -> None:
        self._entries.append(mechanism)

    @property
    def entries(self) -> tuple[Mechanism, ...]:
        return tuple(self._entries)

    def __iter__(self) -> Iterator[Mechanism]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Ledger) and self._entries == other._entries

    def __repr__(self) -> str:
        return f"Ledger({self._entries!r})"

    @property
    def is_empty(self) -> bool:
        return not self._entries

    @property
    def is_private(self) -> bool:
        """False once any raw (non-private) access was recorded."""
        return not any(isinstance(m, NonPrivate) for m in self._entries)

    @property
    def adjacency(self) -> str:
        """``replace_one`` if any entry needs it, else ``add_remove``."""
        kinds = {getattr(m, "adjacency", "add_remove") for m in self._entries}
        return "replace_one" if "replace_one" in kinds else "add_remove"

    def to_dict(self) -> dict[str, Any]:
        return {"entries": [m.to_dict() for m in self._entries]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Ledger:
        return cls(mechanism_from_dict(entry) for entry in data.get("entries", []))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> Ledger:
        return cls.from_dict(json.loads(text))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> Ledger:
        return cls.from_json(Path(path).read_text())
