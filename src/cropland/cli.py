"""The `cropland` command: a thin layer over the library functions."""

from __future__ import annotations

import logging
from pathlib import Path

import typer
from rich.console import Console

from cropland.errors import CroplandError

app = typer.Typer(
    name="cropland",
    help="Build, curate, package, load and benchmark the Canadian Cropland Dataset.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


@app.callback()
def _main(verbose: bool = typer.Option(False, "--verbose", "-v", help="Log debug messages.")):
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


@app.command()
def classes(published: bool = typer.Option(False, help="Only the 10 published classes.")):
    """List crop classes: ACI code, folder name, label."""
    from cropland.core.classes import PUBLISHED_CLASSES, get_class, legend

    rows = [get_class(n) for n in PUBLISHED_CLASSES] if published else legend().values()
    for c in rows:
        typer.echo(f"{c.code:>4}  {c.name:<22} {c.label}")


def run() -> None:
    """Entry point: turn known errors into a one-line message and exit status 2."""
    try:
        app()
    except CroplandError as e:
        console.print(f"[red]error:[/red] {e}", markup=True, highlight=False)
        raise SystemExit(2) from None


if __name__ == "__main__":
    run()
