"""A synthetic insurance-claims table: the data every demo and tutorial of modelworks uses.

Each row is one claim. The label ``needs_review`` (about one claim in five) comes from a
logistic function of what a reviewer would look at: the amount against what the procedure
usually costs, the member's claim history, the provider type, the procedure group and
out-of-network care, plus noise, so models reach a ROC AUC of about 0.8-0.9. The label also
leans mildly on the age band, a sensitive attribute that is *not* a model feature, so the
fairness checks of the governance layer have a real disparity to find.

``drift`` in [0, 1] moves the population the way a year of real claims does: amounts grow,
the region mix moves west and the procedure mix moves towards imaging and surgery.
"""

from __future__ import annotations

from numbers import Real

import numpy as np
import pandas as pd

from ..errors import InvalidInput

__all__ = [
    "AGE_BANDS",
    "FEATURE_COLUMNS",
    "LABEL_COLUMN",
    "PROCEDURE_CODES",
    "PROVIDER_TYPES",
    "REGIONS",
    "SENSITIVE_COLUMNS",
    "generate_claims",
]

MAX_ROWS = 10_000_000

AGE_BANDS = ("18-29", "30-44", "45-64", "65+")
_AGE_EDGES = (18, 30, 45, 65, 91)  # right-open band edges matching AGE_BANDS
SEXES = ("F", "M")
REGIONS = ("Northeast", "Southeast", "Midwest", "Southwest", "West", "Mountain")
_REGION_P = np.array([0.26, 0.22, 0.20, 0.14, 0.12, 0.06])
_REGION_P_DRIFTED = np.array([0.14, 0.16, 0.16, 0.18, 0.24, 0.12])

PROVIDER_TYPES = ("hospital", "clinic", "specialist", "lab", "pharmacy")
_PROVIDER_COST = np.array([1.55, 0.85, 1.25, 0.70, 0.60])  # multiplier on the procedure cost
_PROVIDER_IN_NETWORK = np.array([0.86, 0.92, 0.74, 0.94, 0.96])
_PROVIDER_LOGIT = np.array([0.35, -0.25, 0.45, -0.45, -0.35])

# Procedure groups: the provider mix that performs them, and their review propensity.
_GROUPS = ("office", "emergency", "imaging", "lab", "surgery", "therapy", "drug")
_GROUP_LOGIT = np.array([-0.45, 0.25, 0.30, -0.60, 0.85, 0.10, 0.20])
#                              hospital clinic specialist lab  pharmacy
_GROUP_PROVIDER_P = np.array([
    [0.08, 0.62, 0.28, 0.01, 0.01],  # office
    [0.90, 0.06, 0.04, 0.00, 0.00],  # emergency
    [0.45, 0.15, 0.30, 0.10, 0.00],  # imaging
    [0.15, 0.12, 0.03, 0.68, 0.02],  # lab
    [0.62, 0.03, 0.35, 0.00, 0.00],  # surgery
    [0.10, 0.40, 0.50, 0.00, 0.00],  # therapy
    [0.22, 0.10, 0.13, 0.00, 0.55],  # drug
])  # fmt: skip

# (code, group, median cost in USD), most frequent first: frequencies follow a long tail.
_PROCEDURES = (
    ("99213", "office", 110.0),
    ("99214", "office", 165.0),
    ("85025", "lab", 18.0),
    ("80053", "lab", 25.0),
    ("99212", "office", 75.0),
    ("36415", "lab", 10.0),
    ("97110", "therapy", 45.0),
    ("99203", "office", 130.0),
    ("80061", "lab", 30.0),
    ("83036", "lab", 22.0),
    ("90837", "therapy", 150.0),
    ("99215", "office", 220.0),
    ("71046", "imaging", 60.0),
    ("J1885", "drug", 35.0),
    ("97140", "therapy", 40.0),
    ("99284", "emergency", 520.0),
    ("84443", "lab", 35.0),
    ("J0696", "drug", 28.0),
    ("99285", "emergency", 780.0),
    ("73721", "imaging", 650.0),
    ("72148", "imaging", 720.0),
    ("93000", "office", 40.0),
    ("74177", "imaging", 900.0),
    ("70450", "imaging", 520.0),
    ("J9355", "drug", 2900.0),
    ("45378", "surgery", 1400.0),
    ("43239", "surgery", 1650.0),
    ("66984", "surgery", 2100.0),
    ("29881", "surgery", 3600.0),
    ("27447", "surgery", 14500.0),
)
PROCEDURE_CODES = tuple(code for code, _, _ in _PROCEDURES)
_PROC_GROUP = np.array([_GROUPS.index(group) for _, group, _ in _PROCEDURES])
_PROC_LOG_COST = np.log([cost for _, _, cost in _PROCEDURES])
_PROC_P = 1.0 / np.arange(1, len(_PROCEDURES) + 1) ** 1.05
_PROC_P /= _PROC_P.sum()
# Drift favours imaging and surgery (new imaging centres, an ageing membership).
_PROC_P_DRIFTED = _PROC_P * np.where(np.isin(_PROC_GROUP, [2, 4]), 3.0, 0.8)
_PROC_P_DRIFTED /= _PROC_P_DRIFTED.sum()

# The logit's "mild" lean on a sensitive attribute, per age band.
_AGE_BAND_LOGIT = np.array([0.20, 0.0, 0.0, 0.35])
_INTERCEPT = -2.55

LABEL_COLUMN = "needs_review"
SENSITIVE_COLUMNS = ("age_band", "sex")
# What a model may use: no identifier, no sensitive attribute (member_age is age_band's source).
FEATURE_COLUMNS = (
    "region",
    "procedure_code",
    "provider_type",
    "claim_amount",
    "prior_claims",
    "days_since_last_claim",
    "in_network",
)


def _check(n_rows: object, seed: object, drift: object) -> None:
    if isinstance(n_rows, bool) or not isinstance(n_rows, int | np.integer):
        raise InvalidInput(f"n_rows must be an integer, got {n_rows!r}", field="n_rows")
    if not 1 <= n_rows <= MAX_ROWS:
        raise InvalidInput(f"n_rows must be between 1 and {MAX_ROWS:,}, got {n_rows}",
                           field="n_rows")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise InvalidInput(f"seed must be a non-negative integer, got {seed!r}", field="seed")
    if isinstance(drift, bool) or not isinstance(drift, Real) or not 0.0 <= float(drift) <= 1.0:
        raise InvalidInput(f"drift must be a number between 0 and 1, got {drift!r}",
                           field="drift")


def _categorical(codes: np.ndarray, categories: tuple[str, ...]) -> pd.Categorical:
    """A categorical with every category declared, so splits and drifts share one schema."""
    return pd.Categorical.from_codes(codes, categories=list(categories))


def _choice_rows(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One draw per row from that row's probability vector (rows of ``probs``)."""
    cum = np.cumsum(probs, axis=1)
    u = rng.random(len(probs)) * cum[:, -1]
    return np.minimum((u[:, None] >= cum).sum(axis=1), probs.shape[1] - 1)


def generate_claims(n_rows: int = 5000, *, seed: int = 7, drift: float = 0.0) -> pd.DataFrame:
    """A synthetic claims table of ``n_rows`` rows; the same arguments give the same table.

    Args:
        n_rows: number of claims, 1 to 10 million.
        seed: seed of the random generator (a non-negative integer).
        drift: 0 for the reference population, up to 1 for a strongly shifted one (higher
            amounts, a different region and procedure mix).

    Returns:
        A DataFrame with ``claim_id`` (str), ``member_age`` (int), ``age_band`` and ``sex``
        (categorical, sensitive), ``region``, ``procedure_code``, ``provider_type``
        (categorical), ``claim_amount`` (float, USD), ``prior_claims`` (int),
        ``days_since_last_claim`` (float: whole days, NaN when there is no earlier claim or
        the date is missing), ``in_network`` (bool) and the label ``needs_review`` (0/1).

    Raises:
        InvalidInput: an argument is out of range; the message names it.
    """
    _check(n_rows, seed, drift)
    n, d = int(n_rows), float(drift)
    rng = np.random.default_rng(int(seed))

    age = np.rint(18 + 72 * rng.beta(2.0, 2.6, n)).astype(np.int64)
    band = np.searchsorted(_AGE_EDGES, age, side="right") - 1
    sex = (rng.random(n) < 0.47).astype(np.int64)  # 0 = F, 1 = M

    region = rng.choice(len(REGIONS), size=n, p=(1 - d) * _REGION_P + d * _REGION_P_DRIFTED)
    proc = rng.choice(len(_PROCEDURES), size=n, p=(1 - d) * _PROC_P + d * _PROC_P_DRIFTED)
    group = _PROC_GROUP[proc]
    provider = _choice_rows(rng, _GROUP_PROVIDER_P[group])
    in_network = rng.random(n) < _PROVIDER_IN_NETWORK[provider] - 0.04 * (region == 5)

    prior = rng.poisson(0.8 + 0.025 * (age - 18) + 0.4 * (group == 5))
    days = np.rint(rng.exponential(420.0 / (prior + 0.5)) + 1).clip(1, 1825).astype(np.float64)
    days[(prior == 0) | (rng.random(n) < 0.03)] = np.nan

    # How far a claim sits above what this procedure usually costs: what reviewers look at.
    excess = rng.normal(0.0, 0.55 * (1 + 0.3 * d), n)
    log_amount = (_PROC_LOG_COST[proc] + np.log(_PROVIDER_COST[provider])
                  + 0.18 * ~in_network + 0.004 * (age - 50) + 0.35 * d + excess)
    amount = np.round(np.exp(log_amount), 2)

    recent = np.where(np.isnan(days), 0.0, days < 30)
    logit = (_INTERCEPT + 3.0 * excess + 0.28 * (log_amount - 5.0) + 0.30 * np.minimum(prior, 6)
             + 0.6 * recent + _PROVIDER_LOGIT[provider] + _GROUP_LOGIT[group]
             + 0.9 * ~in_network + _AGE_BAND_LOGIT[band] + rng.normal(0.0, 0.3, n))
    label = (rng.random(n) < 1.0 / (1.0 + np.exp(-logit))).astype(np.int64)

    return pd.DataFrame({
        "claim_id": [f"CLM-{i:08d}" for i in range(1, n + 1)],
        "member_age": age,
        "age_band": _categorical(band, AGE_BANDS),
        "sex": _categorical(sex, SEXES),
        "region": _categorical(region, REGIONS),
        "procedure_code": _categorical(proc, PROCEDURE_CODES),
        "provider_type": _categorical(provider, PROVIDER_TYPES),
        "claim_amount": amount,
        "prior_claims": prior.astype(np.int64),
        "days_since_last_claim": days,
        "in_network": in_network,
        LABEL_COLUMN: label,
    })
