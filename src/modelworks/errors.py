"""The one exception tree of modelworks.

Every error a user can cause or meet is one of these kinds; interfaces map them, never
services: ``cli/`` to exit codes, ``api/`` and ``serving/`` to HTTP status codes.

Our exception hierarchy:

* ModelworksError
  + NotFound            an experiment, run, dataset, model ... that does not exist
  + Conflict            already exists, or contradicts what is recorded (a redefined param)
  + InvalidInput        an argument or field is malformed; the message names it
  + PolicyViolation     a governance gate refused the change
  + PermissionDenied    the actor lacks the role for the change
  + IntegrityError      stored bytes or records do not match their hash
  + StoreUnavailable    the metadata database or artifact store cannot be reached
"""

from __future__ import annotations

__all__ = [
    "Conflict",
    "IntegrityError",
    "InvalidInput",
    "ModelworksError",
    "NotFound",
    "PermissionDenied",
    "PolicyViolation",
    "StoreUnavailable",
]


class ModelworksError(Exception):
    """Base of every error modelworks raises on purpose."""


class NotFound(ModelworksError):
    """The named entity does not exist."""


class Conflict(ModelworksError):
    """The entity already exists, or the change contradicts what is recorded."""


class InvalidInput(ModelworksError):
    """An argument or field is malformed; the message names it.

    ``field`` names the offending argument; ``position`` is the 0-based character offset for
    errors inside a parsed expression (a search filter), else ``None``.
    """

    def __init__(self, message: str, *, field: str | None = None, position: int | None = None):
        super().__init__(message)
        self.field = field
        self.position = position


class PolicyViolation(ModelworksError):
    """A governance gate refused the change."""


class PermissionDenied(ModelworksError):
    """The acting identity lacks the role the change needs."""


class IntegrityError(ModelworksError):
    """Stored bytes or records do not match their recorded hash."""


class StoreUnavailable(ModelworksError):
    """The metadata database or the artifact store cannot be reached."""
