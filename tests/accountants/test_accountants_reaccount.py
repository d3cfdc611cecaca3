"""One definition of re-accounting (issue 13, item 5/10): the accountants package holds it,
the runner and the stored-cell checks use it; an empty ledger in a private cell is refused."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest

from isoeps.accountants import (
    Ledger,
    NonPrivate,
    PrivacyBudget,
    SubsampledGaussian,
    epsilon,
    ledger_digest,
    primary_accountant,
    reaccount,
)

DELTA = 1e-5


def test_an_empty_ledger_in_a_private_cell_is_refused():
    result = reaccount(Ledger(), budget=PrivacyBudget.private(1.0, DELTA), delta=DELTA)
    assert result["refused"] and "an empty ledger in a private cell" in result["refused"]


def test_an_empty_ledger_outside_a_private_cell_is_fine():
    result = reaccount(Ledger(), budget=PrivacyBudget.non_private(), delta=DELTA)
    assert result["refused"] is None


def test_a_sound_ledger_is_unchanged_and_carries_adjacency_and_digest():
    ledger = Ledger([SubsampledGaussian(4.0, 0.5, 1)])
    result = reaccount(
        ledger, budget=PrivacyBudget.private(1.0, DELTA), delta=DELTA, cross_checks=["pld"]
    )
    assert result["refused"] is None
    assert result["accountant"] == "prv" and result["adjacency"] == "add_remove"
    assert result["epsilon_achieved"] == epsilon(ledger, DELTA, "prv") <= 1.0
    assert set(result["epsilon_by_accountant"]) == {"prv", "pld"}
    assert result["ledger_entries"] == 1
    assert result["ledger_sha256"] == hashlib.sha256(ledger.to_json().encode()).hexdigest()
    assert result["ledger_sha256"] == ledger_digest(Ledger.from_json(ledger.to_json()))


@pytest.mark.parametrize(
    ("ledger", "reason"),
    [
        (Ledger([SubsampledGaussian(0.5, 0.5, 1)]), "exceeds the target"),
        (Ledger([SubsampledGaussian(4.0, 0.5, 1), NonPrivate(reason="raw")]), "raw"),
    ],
)
def test_overspent_or_raw_ledgers_are_refused(ledger, reason):
    result = reaccount(ledger, budget=PrivacyBudget.private(1.0, DELTA), delta=DELTA)
    assert result["refused"] and reason in result["refused"]


def test_the_primary_accountant_follows_the_adjacency():
    assert primary_accountant("add_remove") == "prv"
    assert primary_accountant("replace_one") == "pld"
    ledger = Ledger([SubsampledGaussian(4.0, 0.5, 1, adjacency="replace_one")])
    result = reaccount(ledger, budget=PrivacyBudget.private(1.0, DELTA), delta=DELTA)
    assert result["accountant"] == "pld" and result["adjacency"] == "replace_one"


def test_the_cell_flow_uses_the_one_definition():
    from isoeps.bench import cell_flow

    assert cell_flow.reaccount is reaccount


def test_importing_reaccount_imports_no_torch():
    code = (
        "import sys; from isoeps.accountants.reaccount import reaccount; "
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
