"""The model inventory: business purpose, lifecycle and validation status, review dates."""

from __future__ import annotations

from datetime import date, timedelta

__all__ = ["LIFECYCLE_STATUSES", "REVIEW_INTERVAL_DAYS", "VALIDATION_STATUSES", "next_review"]

# How long a validation stays current, by risk tier (annual review for high-risk models is
# common model-risk practice, e.g. under SR 11-7; lower tiers are reviewed less often).
REVIEW_INTERVAL_DAYS = {"high": 365, "medium": 730, "low": 1095}

LIFECYCLE_STATUSES = ("development", "validation", "production", "retired")
VALIDATION_STATUSES = ("not_validated", "validated", "approved", "rejected")


def next_review(risk_tier: str, validated_on: date) -> date:
    """The date a model validated on ``validated_on`` must be reviewed again."""
    return validated_on + timedelta(days=REVIEW_INTERVAL_DAYS[risk_tier])
