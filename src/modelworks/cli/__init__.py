"""The ``modelworks`` command line.

``main.py`` builds the Typer app, reads the global options and maps errors to exit codes;
each command group lives in its own module and registers itself with ``register(app)``.
The global options travel to the commands as a :class:`GlobalOptions` on the Typer context.
"""

from __future__ import annotations

from dataclasses import dataclass

import typer

from ..workspace import Workspace

__all__ = ["GlobalOptions", "global_options"]


@dataclass(frozen=True)
class GlobalOptions:
    """The options given before the command: where the workspace is and who acts.

    ``None`` means "not given": Workspace and Settings then resolve ``MODELWORKS_*``.
    """

    workspace: str | None = None
    artifacts: str | None = None
    user: str | None = None

    def open_workspace(self) -> Workspace:
        return Workspace(self.workspace, artifacts=self.artifacts, user=self.user)


def global_options(ctx: typer.Context) -> GlobalOptions:
    """The global options of this invocation (defaults when the callback did not run)."""
    return ctx.find_object(GlobalOptions) or GlobalOptions()
