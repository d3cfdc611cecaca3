"""The statistics of comparisons: textbook values for the t-CI, the paired t-test, the exact
sign-flip permutation test and Holm's adjustment; the one-seed comparison; the power note."""

from __future__ import annotations

import math

import pytest
from scipy import stats as scipy_stats

from isoeps.results import stats

#: Student's sleep data (Cushny & Peebles 1905, in Student 1908; R's ``sleep``): extra hours of
#: sleep of ten patients under two drugs, the textbook paired example.
DRUG_1 = [0.7, -1.6, -0.2, -1.2, -0.1, 3.4, 3.7, 0.8, 0.0, 2.0]
DRUG_2 = [1.9, 0.8, 1.1, 0.1, -0.1, 4.4, 5.5, 1.6, 4.6, 3.4]


def test_t_interval_half_width_and_n():
    interval = stats.t_interval([1.0, 2.0, 3.0])
    # t_{0.975, 2} = 4.3027 (any t table), s = 1, n = 3
    assert interval.mean == 2.0 and interval.n == 3
    assert interval.half_width == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert (interval.low, interval.high) == pytest.approx((2 - 2.484138, 2 + 2.484138))
    single = stats.t_interval([0.4])
    assert single.half_width is None and single.n == 1 and single.low is None
    with pytest.raises(ValueError, match="at least one"):
        stats.t_interval([])


def test_paired_t_gives_the_textbook_p_value_on_the_sleep_data():
    result = stats.paired_t(DRUG_1, DRUG_2)
    # R: t.test(extra ~ group, data = sleep, paired = TRUE):
    # t = -4.0621, df = 9, p-value = 0.002833, 95% CI -2.4598858 -0.7001142, mean diff -1.58
    assert result.diff == pytest.approx(-1.58)
    assert result.p_value == pytest.approx(0.002833, abs=5e-7)
    assert (result.low, result.high) == pytest.approx((-2.4598858, -0.7001142), abs=1e-7)
    assert result.n == 10 and result.test == stats.PAIRED_T and result.resolved
    # by hand: t = mean(d) / (sd(d) / √n), two-sided p from the t distribution with n − 1 df
    diffs = [a - b for a, b in zip(DRUG_1, DRUG_2)]
    mean = sum(diffs) / len(diffs)
    sd = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1))
    t = mean / (sd / math.sqrt(len(diffs)))
    assert t == pytest.approx(-4.0621, abs=1e-4)
    assert result.p_value == pytest.approx(2 * scipy_stats.t.sf(abs(t), len(diffs) - 1))
    assert result.p_value == pytest.approx(scipy_stats.ttest_rel(DRUG_1, DRUG_2).pvalue)


def test_sign_flip_is_exact():
    # every difference but one zero is positive: only the all-positive pattern (x2, the zero's
    # sign is free) and its mirror are as extreme, 4 of the 2^10 patterns
    assert stats.paired_t(DRUG_1, DRUG_2).permutation_p == pytest.approx(4 / 1024)
    # three positive differences: 2 of 8 patterns, the smallest p three seeds allow
    assert stats.sign_flip_p([0.1, 0.2, 0.3]) == pytest.approx(0.25)
    assert (
        stats.paired_t(list(range(12)), [x - 1.0 + 0.1 * (x % 3) for x in range(12)]).permutation_p
        is None
    )


def test_holm_on_the_textbook_example():
    # Holm (1979); the standard worked example (Wikipedia's "Holm–Bonferroni method"): four
    # p-values at alpha = 0.05 reject H1 and H4; R's p.adjust(p, "holm") gives these values
    adjusted = stats.holm([0.01, 0.04, 0.03, 0.005])
    assert adjusted == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [p < 0.05 for p in adjusted] == [True, False, False, True]
    assert stats.holm([]) == [] and stats.holm([0.7, 0.9]) == [1.0, 1.0]  # capped


def test_better_respects_the_direction():
    lower = stats.paired_t([0.10, 0.12, 0.11], [0.30, 0.33, 0.31])
    assert stats.better(lower, higher_is_better=False)
    assert not stats.better(lower, higher_is_better=True)
    assert not stats.better(lower, higher_is_better=False, p_value=0.2)


def test_constant_differences_need_no_variance():
    result = stats.paired_t([0.2, 0.21], [0.3, 0.31])
    assert result.p_value == 0.0 and result.low == result.high == pytest.approx(-0.1)
    same = stats.paired_t([0.2, 0.3], [0.2, 0.3])
    assert same.p_value == 1.0 and stats.resolution_hint(same) == (
        "A and B are equal at every paired seed"
    )


def test_one_seed_combines_the_per_value_cis():
    assert stats.compare_paired({0: 0.2}, {0: 0.4}) is None
    assert stats.compare_paired({0: 0.2}, {1: 0.4}, a_ci=(0.1, 0.3), b_ci=(0.3, 0.5)) is None
    result = stats.compare_paired({0: 0.2}, {0: 0.4}, a_ci=(0.18, 0.22), b_ci=(0.37, 0.43))
    se = math.hypot(0.02, 0.03) / scipy_stats.norm.ppf(0.975)
    assert result.n == 1 and result.test == stats.PER_VALUE and result.diff_sd is None
    assert result.half_width == pytest.approx(scipy_stats.norm.ppf(0.975) * se)
    assert result.p_value == pytest.approx(2 * scipy_stats.norm.sf(0.2 / se))
    close = stats.compare_paired({0: 0.2}, {0: 0.21}, a_ci=(0.1, 0.3), b_ci=(0.1, 0.3))
    assert "more seeds" in stats.resolution_hint(close) and "more samples" in stats.resolution_hint(
        close
    )


def test_an_unresolved_difference_names_the_seeds_that_would_resolve_it():
    result = stats.paired_t([0.20, 0.26, 0.18], [0.22, 0.21, 0.24])
    assert not result.resolved and abs(result.diff) < result.half_width
    hint = stats.resolution_hint(result)
    needed = stats.seeds_needed(diff=result.diff, sd=result.diff_sd)
    assert f"about {needed} paired seeds (now 3)" in hint and "no ordering is implied" in hint
    t = scipy_stats.t.ppf(0.975, needed - 1)
    before = scipy_stats.t.ppf(0.975, needed - 2)
    assert t * result.diff_sd / math.sqrt(needed) < abs(result.diff)
    assert before * result.diff_sd / math.sqrt(needed - 1) >= abs(result.diff)
    assert stats.resolution_hint(stats.paired_t(DRUG_1, DRUG_2)) is None
