"""What a ``public`` cell's ``fit`` receives in place of the guard: a door that stays shut.

A public row trains on public data only. Its ``fit`` still takes a ``private`` argument (one
signature for every budget), but any use of it, an attribute, ``len`` or iteration, raises a
:class:`~isoeps.errors.PrivacyError` that says so, instead of an ``AttributeError`` on None.
"""

from __future__ import annotations

from typing import Any, NoReturn

from isoeps.errors import PrivacyError


class NoPrivateData:
    """Stands in for :class:`~isoeps.privacy.guard.PrivateData` in a ``public`` cell."""

    __slots__ = ("_method",)

    def __init__(self, *, method: str = "the method") -> None:
        object.__setattr__(self, "_method", method)

    def _refuse(self, what: str) -> NoReturn:
        raise PrivacyError(
            f"{self._method} used private data ({what}) in a 'public' cell: a public row "
            "trains on public data only and reaches no private record"
        )

    def __getattr__(self, name: str) -> Any:
        self._refuse(f".{name}")

    def __setattr__(self, name: str, value: Any) -> None:
        self._refuse(f".{name} = ...")

    def __len__(self) -> int:  # noqa: PLE0303 (it never returns: every use raises)
        self._refuse("len()")

    def __iter__(self) -> NoReturn:
        self._refuse("iteration")

    def __getitem__(self, index: Any) -> NoReturn:
        self._refuse("indexing")

    def __repr__(self) -> str:
        return "NoPrivateData()"
