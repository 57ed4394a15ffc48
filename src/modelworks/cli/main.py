"""The ``modelworks`` Typer app: global options, command groups, and errors as exit codes.

Exit codes: 0 ok; 1 a modelworks error (printed as one ``error: ...`` line on stderr, never a
traceback); 2 a usage error (bad option, missing argument); 130 interrupted (Ctrl-C).
The mapping lives in :class:`_ModelworksGroup` alone, so ``main()``, ``python -m`` and test
runners that invoke ``app`` all get the same behaviour.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from .. import __version__
from ..errors import ModelworksError
from . import (
    GlobalOptions,
    alerts_cmds,
    audit_cmds,
    automl_cmds,
    data_cmds,
    deploy_cmds,
    governance_cmds,
    many_cmd,
    models_cmds,
    monitor_cmds,
    pipeline_cmds,
    predictions_cmds,
    quickstart_cmd,
    serve_cmds,
    trace_cmd,
    tracking_cmds,
    validate_cmd,
    worker_cmds,
    workspace_cmds,
)

__all__ = ["app", "main"]

EXIT_OK, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 130


def _one_line(message: str) -> str:
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


def _show_usage_error(exc: typer.TyperException) -> None:
    # Typer has already printed the help of a group called without a command.
    if type(exc).__name__ == "NoArgsIsHelpError":
        return
    show = getattr(exc, "show", None)
    if callable(show):
        show()  # usage line, "Try '... --help'", then "Error: <message>" on stderr
    else:
        sys.stderr.write(f"Error: {_one_line(exc.format_message())}\n")


class _ModelworksGroup(TyperGroup):
    """Runs the command in non-standalone mode and turns what escapes into an exit code."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        code = self._exit_code(args, prog_name, complete_var, **extra)
        if standalone_mode:
            sys.exit(code)
        return code

    def _exit_code(self, args: Sequence[str] | None, prog_name: str | None,
                   complete_var: str | None, **extra: Any) -> int:
        try:
            rv = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except ModelworksError as exc:
            sys.stderr.write(f"error: {_one_line(str(exc)) or type(exc).__name__}\n")
            return EXIT_ERROR
        except typer.TyperException as exc:  # usage errors (exit_code 2), bad files (1)
            _show_usage_error(exc)
            return exc.exit_code
        except typer.Abort:
            sys.stderr.write("Aborted!\n")
            return EXIT_ERROR
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        # Non-standalone click returns the command's value, or the code of an Exit raised
        # (by --help, typer.Exit, or Ctrl-C, which Typer turns into Exit(130)).
        return rv if isinstance(rv, int) and not isinstance(rv, bool) else EXIT_OK


app = typer.Typer(
    name="modelworks",
    cls=_ModelworksGroup,
    help="modelworks: track, govern, deploy and monitor models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # locals may hold database passwords
)


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"modelworks {__version__}\n")
        raise typer.Exit()


@app.callback()
def _global_options(
    ctx: typer.Context,
    workspace: Annotated[
        str | None,
        typer.Option("--workspace", "-w", metavar="TEXT",
                     help="Workspace folder or database URL (default: $MODELWORKS_WORKSPACE, "
                     "else ./.modelworks)."),
    ] = None,
    artifacts: Annotated[
        str | None,
        typer.Option("--artifacts", metavar="TEXT",
                     help="Artifact root: a folder or fsspec URL (default: "
                     "$MODELWORKS_ARTIFACTS, else <workspace>/artifacts)."),
    ] = None,
    user: Annotated[
        str | None,
        typer.Option("--user", metavar="TEXT",
                     help="Acting identity stamped on audit events (default: "
                     "$MODELWORKS_USER, else the OS user)."),
    ] = None,
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version,
                     help="Print the modelworks version and exit."),
    ] = False,
) -> None:
    ctx.obj = GlobalOptions(workspace=workspace, artifacts=artifacts, user=user)


for _module in (workspace_cmds, tracking_cmds, data_cmds, models_cmds, governance_cmds,
                validate_cmd, trace_cmd, audit_cmds, quickstart_cmd, deploy_cmds,
                serve_cmds, predictions_cmds, monitor_cmds, alerts_cmds, worker_cmds,
                pipeline_cmds, automl_cmds, many_cmd):
    _module.register(app)


def main() -> None:
    """The console script: run the app and exit with its code."""
    app(prog_name="modelworks")


if __name__ == "__main__":
    main()
