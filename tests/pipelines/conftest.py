"""Shared fixtures for pipeline tests: the test process's one local Ray instance.

Ray allows one connection per process, so every test that needs Ray shares this one
(session-scoped); it has at least two CPUs so two workers can run side by side, and Ray
stops it at interpreter exit.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def ray_instance() -> str:
    """Connect (once) to a local Ray instance; returns what the process is connected to."""
    pytest.importorskip("ray")
    from modelworks.pipelines.executors.ray import connect_ray

    return connect_ray(None, num_cpus=max(2, os.cpu_count() or 1))
