"""Data drift: reference profiles, drift statistics and the detector.

``statistics`` holds the pure functions (on raw samples, count vectors and reference cells),
``profile`` the mergeable reference and window profiles, ``methods`` the methods and their
defaults, ``detectors`` the ``DriftDetector`` (``fit`` / ``score``).
"""

from __future__ import annotations

from .detectors import ColumnDrift, DriftDetector, DriftResult
from .methods import METHODS
from .profile import (
    ColumnProfile,
    ReferenceProfile,
    counts_in,
    merge,
    profile_reference,
    profile_window,
)

__all__ = [
    "METHODS",
    "ColumnDrift",
    "ColumnProfile",
    "DriftDetector",
    "DriftResult",
    "ReferenceProfile",
    "counts_in",
    "merge",
    "profile_reference",
    "profile_window",
]
