"""Privacy accounting: mechanisms, ledgers, backends (prv primary, pld, rdp) and calibration.

Importing this package imports no torch and no accounting library; backends load lazily.
"""

from isoeps.accountants.base import (
    PRIMARY,
    Accountant,
    UnknownAccountantError,
    accountant_names,
    create_accountant,
    register_accountant,
)
from isoeps.accountants.budget import PrivacyBudget, cell_delta, default_delta
from isoeps.accountants.calibration import (
    Calibration,
    CalibrationError,
    calibrate,
    calibrate_detailed,
    epsilon,
)
from isoeps.accountants.ledger import Ledger
from isoeps.accountants.mechanisms import (
    AccountingInputError,
    Gaussian,
    Mechanism,
    NonPrivate,
    SubsampledGaussian,
)
from isoeps.accountants.reaccount import ledger_digest, primary_accountant, reaccount

__all__ = [
    "PRIMARY",
    "Accountant",
    "AccountingInputError",
    "Calibration",
    "CalibrationError",
    "Gaussian",
    "Ledger",
    "Mechanism",
    "NonPrivate",
    "PrivacyBudget",
    "SubsampledGaussian",
    "UnknownAccountantError",
    "accountant_names",
    "calibrate",
    "calibrate_detailed",
    "cell_delta",
    "create_accountant",
    "default_delta",
    "epsilon",
    "ledger_digest",
    "primary_accountant",
    "reaccount",
    "register_accountant",
]
