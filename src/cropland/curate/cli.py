"""``cropland curate``: serve the review app, score samples, manage reviewer tokens.

``cropland curate DATASET`` is short for ``cropland curate serve DATASET``. This module
imports only typer; the commands import the app, store and scorer when they run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

DB_HELP = "Decision store: a SQLite file or a postgresql:// URL [default: DATASET/curate.sqlite]."
CONFIG_HELP = ("Quality thresholds: a YAML file (its curate: section, or the whole file) "
               "[default: the curate: section of DATASET/config.yaml].")


class _ServeByDefault(TyperGroup):
    """A group whose first argument, when it is not a command, is a dataset to serve."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:  # click's Context, or typer's copy (typer >= 0.29)
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["serve", *args]
        return super().parse_args(ctx, args)


app = typer.Typer(
    cls=_ServeByDefault,
    no_args_is_help=True,
    help="Review samples: `cropland curate DATASET` serves the review app.",
)
token_app = typer.Typer(no_args_is_help=True, help="Reviewer tokens.")
app.add_typer(token_app, name="token")


def _store_location(dataset: Path | None, db: str | None) -> str:
    if db:
        return db
    if dataset is None:
        raise typer.BadParameter("give --dataset DIR or --db LOCATION")
    return str(dataset / "curate.sqlite")


@app.command()
def serve(
    dataset: Path = typer.Argument(..., help="A built dataset folder (with tif/)."),
    host: str = typer.Option("127.0.0.1", help="Interface to listen on."),
    port: int = typer.Option(8000, min=1, max=65535, help="Port to listen on."),
    db: str | None = typer.Option(None, help=DB_HELP),
    config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
) -> None:
    """Serve the review app (scores new or changed samples first)."""
    from cropland.curate.app import serve as run_server
    from cropland.curate.config import curate_config_for

    typer.echo(f"review app: http://{host}:{port}/  (tokens: cropland curate token add NAME)")
    run_server(dataset, host, port, db, curate_config_for(dataset, config))


@app.command()
def score(
    dataset: Path = typer.Argument(..., help="A built dataset folder (with tif/)."),
    db: str | None = typer.Option(None, help=DB_HELP),
    config: Path | None = typer.Option(None, "--config", "-c", help=CONFIG_HELP),
    workers: int = typer.Option(1, help="Processes reading and scoring the samples."),
) -> None:
    """Compute the quality scores now and print how many samples each status has."""
    from cropland.curate.catalog import Catalog
    from cropland.curate.config import curate_config_for
    from cropland.curate.rules import ensure_quality
    from cropland.curate.store import Store

    catalog = Catalog(dataset)
    store = Store(_store_location(catalog.root, db))
    scored = ensure_quality(catalog, store, curate_config_for(dataset, config), workers)
    statuses = [q["status"] for q in store.quality().values() if q["sample_id"] in catalog]
    counts = ", ".join(f"{statuses.count(s)} {s}" for s in ("accepted", "review", "rejected"))
    typer.echo(f"{len(catalog)} samples ({scored} scored now): {counts}")


@token_app.command("add")
def token_add(
    name: str = typer.Argument(..., help="Reviewer name (letters, digits, _.@-)."),
    dataset: Path | None = typer.Option(None, "--dataset", "-d", help="Dataset whose store to use."),
    db: str | None = typer.Option(None, help=DB_HELP),
) -> None:
    """Create a reviewer (or replace their token) and print the new token once."""
    from cropland.curate.store import Store

    typer.echo(Store(_store_location(dataset, db)).add_reviewer(name))


@token_app.command("revoke")
def token_revoke(
    name: str = typer.Argument(..., help="Reviewer name."),
    dataset: Path | None = typer.Option(None, "--dataset", "-d", help="Dataset whose store to use."),
    db: str | None = typer.Option(None, help=DB_HELP),
) -> None:
    """Invalidate a reviewer's token; their decisions stay."""
    from cropland.curate.store import Store

    Store(_store_location(dataset, db)).revoke_reviewer(name)
    typer.echo(f"revoked {name}")


@token_app.command("list")
def token_list(
    dataset: Path | None = typer.Option(None, "--dataset", "-d", help="Dataset whose store to use."),
    db: str | None = typer.Option(None, help=DB_HELP),
) -> None:
    """List reviewers (tokens are stored hashed and cannot be shown)."""
    from cropland.curate.store import Store

    for r in Store(_store_location(dataset, db)).reviewers():
        state = f"revoked {r['revoked_at']}" if r["revoked_at"] else "active"
        typer.echo(f"{r['name']:<24} created {r['created_at']}  {state}")
