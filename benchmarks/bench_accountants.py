"""Calibration speed: isoeps ``calibrate`` vs opacus ``get_noise_multiplier``, same run.

For each (q, eps) point at T = 10,000 and delta = 1e-5, times both calibrations (best of
``--repeats``) for the ``rdp`` and ``prv`` accountants and reports sigma, the achieved epsilon
(each under its own accountant) and the number of accountant evaluations (for isoeps ``prv``
these are all prv-accountant passes, coarse forecasts included). isoeps runs at ``--rtol``
(default 1e-4: tighter than opacus's absolute tolerance of 0.01, so sigma is no larger).

    .venv/bin/python benchmarks/bench_accountants.py [--repeats 3] [--rtol 1e-4] [--json]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

POINTS = ((0.01, 1.0), (0.01, 5.0), (0.01, 10.0), (0.004, 3.0))
STEPS, DELTA = 10_000, 1e-5


def _opacus(accountant: str, eps: float, q: float) -> tuple[float, float, int]:
    from opacus.accountants import create_accountant
    from opacus.accountants.utils import get_noise_multiplier

    counter = {"n": 0}
    cls = type(create_accountant(accountant))
    original = cls.get_epsilon

    def counted(self, *args, **kwargs):
        counter["n"] += 1
        return original(self, *args, **kwargs)

    cls.get_epsilon = counted
    try:
        sigma = get_noise_multiplier(
            target_epsilon=eps,
            target_delta=DELTA,
            sample_rate=q,
            steps=STEPS,
            accountant=accountant,
        )
    finally:
        cls.get_epsilon = original
    check = create_accountant(accountant)
    check.history = [(sigma, q, STEPS)]
    return sigma, check.get_epsilon(delta=DELTA), counter["n"]


def _isoeps(accountant: str, eps: float, q: float, rtol: float) -> tuple[float, float, int]:
    from isoeps.accountants.calibration import calibrate_detailed

    result = calibrate_detailed(eps, DELTA, q, STEPS, accountant, rtol=rtol)
    return result.noise_multiplier, result.epsilon, result.evaluations


def _best(fn, repeats: int, *args) -> tuple[float, tuple]:
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rtol", type=float, default=1e-4)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    _isoeps("rdp", 1.0, 0.01, args.rtol), _opacus("rdp", 1.0, 0.01)  # warm imports
    rows = []
    for accountant in ("rdp", "prv"):
        for q, eps in POINTS:
            t_iso, (s_iso, e_iso, n_iso) = _best(
                _isoeps, args.repeats, accountant, eps, q, args.rtol
            )
            t_op, (s_op, e_op, n_op) = _best(_opacus, args.repeats, accountant, eps, q)
            rows.append(
                {
                    "accountant": accountant,
                    "rtol": args.rtol,
                    "q": q,
                    "eps": eps,
                    "steps": STEPS,
                    "delta": DELTA,
                    "isoeps_s": t_iso,
                    "opacus_s": t_op,
                    "speedup": t_op / t_iso,
                    "isoeps_sigma": s_iso,
                    "opacus_sigma": s_op,
                    "sigma_no_larger": s_iso <= s_op,
                    "isoeps_eps": e_iso,
                    "opacus_eps": e_op,
                    "isoeps_evals": n_iso,
                    "opacus_evals": n_op,
                }
            )
            r = rows[-1]
            if not args.json:
                print(
                    f"{accountant} q={q:g} eps={eps:g}: isoeps {t_iso:.3f}s sigma={s_iso:.5f} "
                    f"eps={e_iso:.4f} evals={n_iso} | opacus {t_op:.3f}s sigma={s_op:.5f} "
                    f"eps={e_op:.4f} evals={n_op} | speedup {r['speedup']:.1f}x",
                    flush=True,
                )
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
