"""Runs record where they ran: git commit, dirty tree and diff hash, Python, packages, host."""

from __future__ import annotations

import platform
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

import modelworks as mw
from modelworks.tracking import environment

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True,
                          text=True).stdout.strip()


def test_git_state_is_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.email", "a@example.com")
    _git(repo, "config", "user.name", "a")
    (repo / "train.py").write_text("print('v1')\n")
    _git(repo, "add", "train.py")
    _git(repo, "commit", "-qm", "v1")
    head = _git(repo, "rev-parse", "HEAD")
    monkeypatch.chdir(repo)
    environment._git_cache.clear()
    ws = mw.Workspace(tmp_path / "ws", user="alice")
    with ws.start_run(experiment="e") as clean:
        pass
    rec = ws.get_run(clean.id)
    assert (rec.git_commit, rec.git_dirty, rec.git_diff_hash) == (head, False, None)
    assert rec.python_version == platform.python_version()
    assert rec.host == socket.gethostname()
    assert rec.packages_hash == environment.packages_hash() and len(rec.packages_hash) == 64

    (repo / "train.py").write_text("print('v2')\n")
    environment._git_cache.clear()  # the cache keeps git state for GIT_CACHE_SECONDS
    with ws.start_run(experiment="e") as dirty:
        pass
    first = ws.get_run(dirty.id)
    assert first.git_commit == head and first.git_dirty is True
    assert first.git_diff_hash is not None and len(first.git_diff_hash) == 64
    (repo / "train.py").write_text("print('v3')\n")
    environment._git_cache.clear()
    with ws.start_run(experiment="e") as other:
        pass
    assert ws.get_run(other.id).git_diff_hash != first.git_diff_hash  # the diff is hashed
    ws.close()


def test_outside_a_repository_git_fields_are_empty(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    environment._git_cache.clear()
    ws = mw.Workspace(tmp_path / "ws", user="alice")
    with ws.start_run(experiment="e") as run:
        pass
    rec = ws.get_run(run.id)
    assert (rec.git_commit, rec.git_dirty, rec.git_diff_hash) == (None, None, None)
    ws.close()
