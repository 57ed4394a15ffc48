"""Typed settings: the only reader of ``MODELWORKS_*`` environment variables.

Resolution order for each setting: explicit argument, then environment, then default.
"""

from __future__ import annotations

import getpass
import os
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["DEFAULT_WORKSPACE", "Settings", "WorkspaceLocation", "redact", "resolve_location"]

DEFAULT_WORKSPACE = ".modelworks"
_DB_FILE = "modelworks.db"
_DB_SCHEMES = ("sqlite", "postgresql", "postgres")


class Settings(BaseSettings):
    """Settings read from ``MODELWORKS_*``; arguments passed to Workspace take precedence."""

    model_config = SettingsConfigDict(env_prefix="MODELWORKS_", extra="ignore")

    workspace: str | None = Field(None, description="A folder, or a database URL.")
    artifacts: str | None = Field(None, description="Artifact root: a folder or fsspec URL.")
    user: str | None = Field(None, description="The acting identity stamped on audit events.")
    test_postgres_url: str | None = Field(None, description="PostgreSQL URL for the test suite.")
    # Secrets for pseudonymisation; never written to the workspace (see governance/pseudonyms).
    pseudonym_key: SecretStr | None = Field(
        None, description="Active pseudonym key as KEY_ID:SECRET (hex or base64, 32+ bytes).")
    pseudonym_key_file: str | None = Field(
        None, description='JSON/YAML key file {"active": ID, "keys": {ID: SECRET}}.')
    # Serving (see docs/serving.md).
    serve_memory_budget_mb: float = Field(
        1024, gt=0, description="Loaded models per worker are evicted (LRU) beyond this.")
    serve_max_body_bytes: int = Field(
        10 * 1024 * 1024, gt=0, description="Larger request bodies are refused with 413.")
    serve_alias_refresh_seconds: float = Field(
        2.0, ge=0, description="How long a resolved alias or deployment is trusted.")
    serve_log_probabilities: bool = Field(
        True, description="Log class probabilities of classifiers even when the client did "
                          "not ask for them (performance estimation needs them).")
    prediction_log_dir: str | None = Field(
        None, description="Local journal folder (default: <workspace>/prediction-journal).")
    prediction_log_fsync_seconds: float = Field(
        1.0, ge=0, description="fsync the journal this often (0: after every write).")
    prediction_log_compact_seconds: float = Field(
        30.0, gt=0, description="Compact closed journal segments into Parquet this often.")
    # Ray (see docs/pipelines.md, "Executors"): a cluster to run on, else a local instance.
    ray_address: str | None = Field(
        None, description="Ray cluster: ray://host:10001 (Ray Client) or host:6379; unset "
                          "starts a local Ray instance.")
    ray_token: SecretStr | None = Field(
        None, description="The cluster's Ray auth token (Ray 2.60+ enables token auth).")
    # The worker (see docs/retraining.md): it registers what it retrains, so never approves it.
    worker_identity: str = Field(
        "modelworks-worker", min_length=1, max_length=256,
        description="The identity `modelworks worker` acts (and retrains) as.")

    def actor(self, explicit: str | None = None) -> str:
        """The acting identity: argument, then MODELWORKS_USER, then the OS user."""
        for candidate in (explicit, self.user):
            if candidate and candidate.strip():
                return candidate.strip()
        try:
            return getpass.getuser()
        except (KeyError, OSError):  # no passwd entry (containers): fall back to uid
            return f"uid-{os.getuid()}"


class WorkspaceLocation:
    """Where a workspace keeps its metadata database and its artifacts."""

    def __init__(self, db_url: str, artifacts: str, folder: Path | None) -> None:
        self.db_url = db_url
        self.artifacts = artifacts
        self.folder = folder

    def __repr__(self) -> str:
        return f"WorkspaceLocation(db_url={redact(self.db_url)!r}, artifacts={self.artifacts!r})"


def redact(url: str) -> str:
    """The URL with any password replaced by ***, for messages and logs."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a database URL: nothing to hide
        return url


def _is_db_url(value: str) -> bool:
    scheme = value.split("://", 1)[0].split("+", 1)[0].lower() if "://" in value else ""
    return scheme in _DB_SCHEMES


def resolve_location(
    location: str | os.PathLike[str] | None,
    *,
    artifacts: str | os.PathLike[str] | None,
    settings: Settings,
    require_artifacts: bool = True,
) -> WorkspaceLocation:
    """Turn a folder or a database URL (and an optional artifact root) into a location.

    ``require_artifacts=False`` is for database-only work (``db upgrade``): a team store
    without an artifact root then gets an empty ``artifacts``.
    """
    from .errors import InvalidInput

    raw = os.fspath(location) if location is not None else settings.workspace
    raw = raw or DEFAULT_WORKSPACE
    art = os.fspath(artifacts) if artifacts is not None else settings.artifacts
    if _is_db_url(raw):
        url = raw.replace("postgres://", "postgresql://", 1)
        if url.startswith("postgresql://"):
            url = "postgresql+psycopg://" + url[len("postgresql://") :]
        if art is None:
            if url.startswith("sqlite"):
                db_path = Path(url.split("///", 1)[-1]).resolve()
                art = str(db_path.parent / "artifacts")
            elif not require_artifacts:
                return WorkspaceLocation(url, "", None)
            else:
                raise InvalidInput(
                    "a database workspace needs an artifact root: pass artifacts= "
                    "(CLI: --artifacts; a folder or an fsspec URL such as s3://bucket/prefix) "
                    "or set MODELWORKS_ARTIFACTS",
                    field="artifacts",
                )
        return WorkspaceLocation(url, _normalise_artifacts(art), None)
    if "://" in raw:
        raise InvalidInput(
            f"workspace {raw.split('://', 1)[0]}:// is not supported: give a folder, "
            "sqlite:///path or postgresql://user@host/db",
            field="workspace",
        )
    folder = Path(raw).expanduser().resolve()
    db_url = f"sqlite:///{folder / _DB_FILE}"
    return WorkspaceLocation(db_url, _normalise_artifacts(art or str(folder / "artifacts")), folder)


def _normalise_artifacts(value: str) -> str:
    if "://" in value:
        return value.rstrip("/")
    return str(Path(value).expanduser().resolve())
