"""Capture where a run ran: code version, Python, installed packages, host."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import socket
import subprocess
import time
from importlib import metadata as importlib_metadata

from pydantic import BaseModel, ConfigDict

__all__ = ["RunEnvironment", "capture_environment", "packages_hash"]


class RunEnvironment(BaseModel):
    model_config = ConfigDict(frozen=True)

    git_commit: str | None
    git_dirty: bool | None
    git_diff_hash: str | None
    python_version: str
    packages_hash: str
    host: str


@functools.lru_cache(maxsize=1)
def packages_hash() -> str:
    """sha256 over the sorted ``name==version`` list of installed distributions.

    Cached per process: the package set of a running interpreter does not change in a way
    that matters to what it already imported.
    """
    names = sorted(
        f"{(d.metadata['Name'] or '').lower()}=={d.version}"
        for d in importlib_metadata.distributions()
    )
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def _git(args: list[str], cwd: str) -> bytes | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=cwd, capture_output=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def capture_git(cwd: str | None = None) -> tuple[str | None, bool | None, str | None]:
    """(commit, dirty, sha256 of the diff against HEAD incl. untracked names) or Nones."""
    where = cwd or os.getcwd()
    status = _git(["status", "--porcelain=v2", "--branch"], where)
    if status is None:
        return None, None, None
    commit = None
    dirty = False
    for line in status.decode(errors="replace").splitlines():
        if line.startswith("# branch.oid "):
            oid = line.split()[-1]
            commit = None if oid == "(initial)" else oid
        elif not line.startswith("#"):
            dirty = True
    diff_hash = None
    if dirty:
        diff = _git(["diff", "HEAD", "--binary"], where) if commit else b""
        untracked = _git(["ls-files", "--others", "--exclude-standard"], where) or b""
        diff_hash = hashlib.sha256((diff or b"") + b"\0untracked\0" + untracked).hexdigest()
    return commit, dirty, diff_hash


# Git state per working directory, reused for a short while: asking git costs ~5 ms, more
# than the rest of starting a run, and a process starting many runs (a search, a pipeline)
# runs code it loaded at its start anyway.
GIT_CACHE_SECONDS = 30.0
_git_cache: dict[str, tuple[float, tuple[str | None, bool | None, str | None]]] = {}


def _cached_git(cwd: str | None) -> tuple[str | None, bool | None, str | None]:
    where = os.path.realpath(cwd or os.getcwd())
    now = time.monotonic()
    hit = _git_cache.get(where)
    if hit is not None and now - hit[0] < GIT_CACHE_SECONDS:
        return hit[1]
    value = capture_git(where)
    _git_cache[where] = (now, value)
    return value


def capture_environment(cwd: str | None = None) -> RunEnvironment:
    commit, dirty, diff_hash = _cached_git(cwd)
    return RunEnvironment(
        git_commit=commit,
        git_dirty=dirty,
        git_diff_hash=diff_hash,
        python_version=platform.python_version(),
        packages_hash=packages_hash(),
        host=socket.gethostname(),
    )
