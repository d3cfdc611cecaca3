"""The stand-in a public cell's fit receives: every use raises a PrivacyError that says why."""

from __future__ import annotations

import re

import pytest

from isoeps.errors import PrivacyError
from isoeps.privacy.public_only import NoPrivateData


@pytest.mark.parametrize(
    "use, what",
    [
        (lambda d: d.poisson_batches, ".poisson_batches"),
        (lambda d: d.raw(reason="x"), ".raw"),
        (lambda d: len(d), "len()"),
        (lambda d: bool(d), "len()"),
        (lambda d: list(d), "iteration"),
        (lambda d: d[0], "indexing"),
        (lambda d: setattr(d, "ledger", None), ".ledger = ..."),
    ],
)
def test_every_use_refuses(use, what: str) -> None:
    door = NoPrivateData(method="m")
    with pytest.raises(PrivacyError, match=re.escape(f"m used private data ({what})")) as caught:
        use(door)
    assert what in str(caught.value) and "public data only" in str(caught.value)


def test_it_is_not_none_and_says_what_it_is() -> None:
    door = NoPrivateData()
    assert door is not None and repr(door) == "NoPrivateData()"
