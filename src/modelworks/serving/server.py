"""Run the serving app under uvicorn: one process, or N worker processes.

With ``workers > 1`` uvicorn imports ``app_from_env`` in each worker (a factory), so the
options travel as environment variables (``MODELWORKS_SERVE_*`` below): each worker opens its
own Workspace, model cache and prediction-journal folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

__all__ = ["app_from_env", "serve"]

_ENV = "MODELWORKS_SERVE_OPTIONS"


def app_from_env() -> Any:
    """The app for one worker, from the options ``serve`` put in the environment."""
    from ..workspace import Workspace
    from .app import create_app

    options = json.loads(os.environ[_ENV])
    workspace = Workspace(options["workspace"], artifacts=options["artifacts"],
                          user=options["user"])
    return create_app(workspace, models=options["models"],
                      log_predictions=options["log_predictions"])


def serve(*, workspace: str | None, artifacts: str | None, user: str | None,
          models: Sequence[str], host: str = "127.0.0.1", port: int = 8080, workers: int = 1,
          log_predictions: bool = True, log_level: str = "warning",
          announce: Any = None) -> None:
    """Check the workspace and the pinned models, then run uvicorn; ``announce(text)`` is
    called once the checks passed, before the server starts."""
    import uvicorn

    from ..workspace import Workspace

    # Open once here: validates the location, migrates an embedded store and checks the
    # pinned models exist before any worker starts.
    with Workspace(workspace, artifacts=artifacts, user=user) as ws:
        for uri in models:
            ws.resolve_model(uri if uri.startswith("models:") else f"models:/{uri}")
        location = ws.location
        actor = ws.actor
    options = {"workspace": location.db_url if location.folder is None else str(location.folder),
               "artifacts": location.artifacts, "user": actor, "models": list(models),
               "log_predictions": log_predictions}
    os.environ[_ENV] = json.dumps(options)
    if announce is not None:
        announce(f"serving on http://{host}:{port} ({workers} worker"
                 f"{'s' if workers > 1 else ''}; models: {', '.join(models) or 'lazy'})")
    common: dict[str, Any] = {"host": host, "port": port, "log_level": log_level,
                              "timeout_graceful_shutdown": 30, "access_log": False}
    if workers == 1:
        uvicorn.run(app_from_env(), **common)
    else:
        uvicorn.run("modelworks.serving.server:app_from_env", factory=True, workers=workers,
                    **common)
