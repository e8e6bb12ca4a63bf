"""The `cropland` command: a thin layer over the library functions."""

from __future__ import annotations

import errno
import logging
import sqlite3
from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

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
    if not verbose:  # GDAL's messages about a failure we report ourselves, in one line
        logging.getLogger("rasterio").setLevel(logging.WARNING)


def _report(result) -> None:
    """Print how the build's samples ended; exit status 1 when some failed."""
    summary = result.extraction
    why = ", ".join(f"{n} {reason}" for reason, n in sorted(summary.empty_reasons.items()))
    counts = ", ".join(f"{n} {status}" + (f" ({why})" if status == "empty" and why else "")
                       for status, n in sorted(summary.counts.items()))
    console.print(f"[green]samples:[/green] {counts}")
    for task, reason in result.extraction.failures[:5]:
        console.print(f"[yellow]failed[/yellow] {task}: {reason}")
    console.print(f"dataset: {result.output}")
    console.print(f"report:  {result.report}")
    if failed := len(result.extraction.failures):
        console.print(f"[red]{failed} samples failed[/red]: the dataset lacks them; fix the cause "
                      "above and run the same command with --retry-failed")
        raise typer.Exit(1)


@app.command()
def demo(
    out: Path = typer.Option(Path("demo-out"), "--out", help="Output folder."),
    workers: int = typer.Option(2, help="Worker processes."),
    show_config: bool = typer.Option(False, help="Print the demo configuration and exit."),
):
    """Simulate a small archive offline and run every stage on it (synthetic data)."""
    from cropland.config import demo_config_path, load_config
    from cropland.pipeline import build_dataset

    if show_config:
        typer.echo(demo_config_path().read_text())
        return
    cfg = load_config(demo_config_path(), output=str(out.resolve()))
    _report(build_dataset(cfg, workers=workers))


@app.command()
def build(
    config: Path = typer.Option(..., "--config", "-c", help="Build configuration (YAML)."),
    out: Path | None = typer.Option(None, "--out", help="Output folder (overrides `output`)."),
    workers: int = typer.Option(1, help="Worker processes for extraction (a local Dask "
                                "cluster when > 1)."),
    scheduler: str | None = typer.Option(None, "--scheduler", help="Dask scheduler address "
                                         "(tcp://host:8786) to extract on."),
    retry_failed: bool = typer.Option(False, help="Run failed tasks again."),
):
    """Build a dataset: extract composites, split, export PNGs/zips, write the report."""
    from cropland.config import load_config
    from cropland.extraction.cluster import extraction_executor
    from cropland.pipeline import build_dataset

    cfg = load_config(config, output=str(out.resolve()) if out else None)
    with extraction_executor(scheduler, workers) as executor:
        _report(build_dataset(cfg, executor=executor, workers=workers, retry_failed=retry_failed))


@app.command()
def check(
    config: Path = typer.Option(..., "--config", "-c", help="Build configuration (YAML)."),
    workers: int = typer.Option(1, help="Workers the build will use (for the time estimate)."),
):
    """Check a build's source in a minute: items per month, one patch read, reflectance
    ranges, the baseline offset, and an estimate of the whole build."""
    from cropland.config import load_config
    from cropland.extraction.preflight import preflight

    report = preflight(load_config(config), workers=workers)
    for line in report.lines():
        typer.echo(line)


from cropland.points.cli import app as _points_app  # noqa: E402  (imports typer only)

app.add_typer(_points_app, name="points")


@app.command("export")
def export_cmd(
    dataset: Path = typer.Argument(..., help="A built dataset folder (with tif/, config.yaml "
                                   "and splits.json)."),
    overwrite: bool = typer.Option(False, help="Rewrite PNGs and zips that already exist."),
    workers: int | None = typer.Option(None, help="Rendering processes (default: the cores)."),
    curated: bool = typer.Option(False, "--curated", help="Write the curated release instead: "
                                 "a new folder without rejected samples (see `cropland curate`)."),
    out: Path | None = typer.Option(None, help="With --curated: the new folder "
                                    "[default: DATASET-curated]."),
    db: str | None = typer.Option(None, help="With --curated: the decision store "
                                  "[default: DATASET/curate.sqlite]."),
):
    """Render the PNG tree and raw zips from a dataset's GeoTIFFs (its own config and splits)."""
    if curated:
        from cropland.curate.export import export_curated

        c = export_curated(dataset, out or dataset.parent / f"{dataset.name}-curated", db,
                           workers=workers)
        console.print(f"curated release {c.output}: {c.kept} samples kept, "
                      f"{c.rejected_by_reviewers} rejected by reviewers, "
                      f"{c.rejected_automatically} rejected automatically")
        return
    from cropland.dataset import DatasetFolder
    from cropland.export.release import export_release

    folder = DatasetFolder(dataset)
    cfg, splits = folder.config(), folder.splits()
    s = export_release(dataset, cfg, splits, overwrite=overwrite, workers=workers)
    console.print(f"{s.samples} samples: {s.pngs_written} PNGs and {s.zips_written} zips "
                  f"written, {s.up_to_date} samples already up to date")


@app.command("stats")
def stats_cmd(dataset: Path = typer.Argument(..., help="A built dataset folder.")):
    """Write a dataset's statistics (stats/, report.md) and its dataset card."""
    from cropland.card import write_card
    from cropland.stats import scan_dataset, write_report

    samples = scan_dataset(dataset)
    console.print(f"report: {write_report(dataset, samples)}")
    console.print(f"card:   {write_card(dataset, samples)}")


@app.command("publish")
def publish_cmd(
    dataset: Path = typer.Argument(..., help="A dataset folder, the original release's zips, or a "
                                   "release folder to push as it is."),
    out: Path | None = typer.Option(None, "--out", help="The release folder to write."),
    push: str | None = typer.Option(None, "--push", help="Upload to this Hugging Face dataset "
                                    "repository (USER/NAME); token from HF_TOKEN."),
    private: bool = typer.Option(False, help="Create the Hub repository private."),
    points: Path | None = typer.Option(None, help="Points table with the original release's "
                                       "coordinates (`cropland points import`)."),
    max_shard_mb: int = typer.Option(256, help="Largest Parquet shard, MiB."),
):
    """Write a release (Parquet shards, dataset card, Croissant, STAC, citation, checksums); push it."""
    from cropland.publish import publish
    from cropland.publish import push as push_release

    release = dataset if out is None and (dataset / "croissant.json").exists() else out
    if release is None:
        raise typer.BadParameter("--out is required (or pass a release folder with --push)")
    if release is not dataset:
        console.print(f"release: {publish(dataset, release, points, max_shard_mb, repo=push)}")
    if push:
        console.print(f"pushed:  {push_release(release, push, private)}")


from cropland.curate.cli import app as _curate_app  # noqa: E402  (imports typer only)
from cropland.train.cli import register as _register_training  # noqa: E402

app.add_typer(_curate_app, name="curate")
_register_training(app)


@app.command()
def classes(published: bool = typer.Option(False, help="Only the 10 published classes.")):
    """List crop classes: ACI code, folder name, label."""
    from cropland.core.classes import PUBLISHED_CLASSES, get_class, legend

    rows = [get_class(n) for n in PUBLISHED_CLASSES] if published else legend().values()
    for c in rows:
        typer.echo(f"{c.code:>4}  {c.name:<22} {c.label}")


@app.command("config-schema")
def config_schema():
    """Print the build configuration's JSON Schema: every field, its type, default and meaning."""
    import json

    from cropland.config import BuildConfig

    typer.echo(json.dumps(BuildConfig.model_json_schema(), indent=1))


def run() -> None:
    """Entry point: every mistake is one line on stderr and exit status 2, never a traceback.

    Known errors (a CroplandError), usage errors (a bad option or argument) and what the
    system refuses (a read-only folder, a full disk) name the problem and the fix; ``-v``
    also logs the traceback.
    """
    try:
        code = app(standalone_mode=False)
    except typer.TyperException as e:  # bad options and arguments
        ctx = getattr(e, "ctx", None)  # usage errors know their command
        where = f"; see `{ctx.command_path} --help`" if ctx else ""
        _fail(" ".join(e.format_message().split()) + where)
    except typer.Abort:
        _fail("aborted", 130)
    except CroplandError as e:
        _fail(str(e))
    except (OSError, sqlite3.OperationalError) as e:
        if not (message := _system_refusal(e)):
            raise
        logging.getLogger(__name__).debug("the system refused", exc_info=True)
        _fail(message)
    raise SystemExit(code if isinstance(code, int) else 0)


def _fail(message: str, code: int = 2) -> NoReturn:
    console.print(f"[red]error:[/red] {escape(message)}", markup=True, highlight=False,
                  soft_wrap=True)  # one line, however narrow the terminal
    raise SystemExit(code) from None


_NO_SPACE = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
_NOT_ALLOWED = {errno.EACCES, errno.EPERM, errno.EROFS}


def _system_refusal(e: Exception) -> str | None:
    """A one-line account of a refused read or write (with its fix), or None for other errors."""
    if isinstance(e, sqlite3.OperationalError):
        text = str(e)
        if "full" in text:
            return f"a database: {text}; free disk space and run the command again"
        if "readonly" in text or "unable to open" in text:
            return f"a database: {text}; make its folder writable (or choose another)"
        return None
    assert isinstance(e, OSError)
    what = e.filename or "a file"
    if e.errno in _NO_SPACE:
        return f"cannot write {what}: {e.strerror}; free disk space and run the command again"
    if e.errno in _NOT_ALLOWED:
        return f"{what}: {e.strerror}; choose a folder you may write to (or fix its permissions)"
    if e.filename and e.strerror:
        return f"{what}: {e.strerror}; check the path"
    return None


if __name__ == "__main__":
    run()
