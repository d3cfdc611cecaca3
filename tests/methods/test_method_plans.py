"""``plan(budget, N)``: what a method would spend, computed without touching data."""

from __future__ import annotations

import math

import pytest

from isoeps.accountants import PrivacyBudget
from isoeps.methods.base import MethodContext
from isoeps.methods.dpagg_ti import DPAggTI
from isoeps.methods.wavelet_two_stage import WaveletTwoStage

N = 20000
DELTA = 1 / (N * math.log(N))


@pytest.mark.parametrize("target", [1.0, 10.0])
def test_ar_plan_is_calibrated_under_target(target):
    method = WaveletTwoStage(
        {"dp_sgd": {"steps": 20, "expected_batch_size": 128}}, ctx=MethodContext(seed=0)
    )
    plan = method.plan(PrivacyBudget.private(target, DELTA), N)
    assert plan["steps"] == 20
    assert plan["sample_rate"] == pytest.approx(128 / N)
    assert plan["noise_multiplier"] > 0
    assert target * 0.98 <= plan["epsilon"]["prv"] <= target


def test_ar_plan_inf_has_no_noise_and_public_has_no_plan():
    method = WaveletTwoStage({}, ctx=MethodContext(seed=0))
    assert method.plan(PrivacyBudget.non_private(), N)["noise_multiplier"] is None
    assert method.plan(PrivacyBudget.public_only(), N) is None


def test_dpagg_plan_is_one_release_under_target():
    method = DPAggTI({"expected_records": 100}, ctx=MethodContext(seed=0))
    plan = method.plan(PrivacyBudget.private(1.0, DELTA), N)
    assert plan["steps"] == 1
    assert plan["sample_rate"] == pytest.approx(100 / N)
    assert 0.98 <= plan["epsilon"]["prv"] <= 1.0
    assert method.plan(PrivacyBudget.public_only(), N) is None
