"""``modelworks quickstart``: the end-to-end demo in a folder of its own."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

__all__ = ["register"]


def quickstart(
    directory: Annotated[
        Path,
        typer.Option("--dir", file_okay=False, dir_okay=True,
                     help="Folder for the demo workspace (created if missing)."),
    ] = Path(".modelworks-quickstart"),
) -> None:
    """Run the end-to-end demo: data, tracked training runs, lineage and audit.

    The demo keeps its own workspace in --dir; the global --workspace is not used.
    """
    # Imported on use: the demo pulls in its data generator and training code.
    from ..quickstart import run_quickstart

    # Rich's own width (not the wide piped tables of _output): the demo is read by people.
    run_quickstart(directory, console=Console())


def register(app: typer.Typer) -> None:
    app.command("quickstart")(quickstart)
