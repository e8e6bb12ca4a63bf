"""`cropland points ...`: field points and yearly labels (thin wrappers over the library)."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import typer

app = typer.Typer(
    help="Field points: sample from the ACI, label yearly, import/export the original list, map.",
    no_args_is_help=True,
)


def _echo_table(df) -> None:
    typer.echo(df.to_string())


@app.command()
def sample(
    config: Path = typer.Option(..., "--config", "-c", help="Sampling YAML (see configs/)."),
    output: Path | None = typer.Option(None, "--output", "-o", help="Points table to write."),
    seed: int | None = typer.Option(None, help="Override the config's seed."),
) -> None:
    """Sample field centres from ACI rasters (or Earth Engine) into a points table."""
    from cropland.points.aci import AciReader, EarthEngineAci, open_aci
    from cropland.points.config import load_sample_config
    from cropland.points.sample import sample_points
    from cropland.points.table import write_points

    cfg = load_sample_config(config, seed=seed)
    if output is not None:
        cfg = cfg.model_copy(update={"output": output})
    readers: list[AciReader]
    with ExitStack() as opened:  # every reader opened so far is closed, even on errors
        if cfg.earthengine is not None:
            ee = cfg.earthengine
            readers = [EarthEngineAci(cfg.year, ee.region, ee.crs, ee.resolution, ee.project)]
        else:
            readers = [opened.enter_context(open_aci(a, cfg.year)) for a in cfg.aci]
        result = sample_points(readers, cfg)
    write_points(result.points, cfg.output)
    _echo_table(result.summary)
    typer.echo(f"wrote {len(result.points)} points to {cfg.output}")


@app.command("import")
def import_(
    original: Path | None = typer.Argument(
        None, help="Original point list (points_ALL_categories CSV); or use --published."),
    output: Path = typer.Option(..., "--output", "-o", help="Points table (.csv/.parquet)."),
    published: str | None = typer.Option(
        None, help="Fetch a published point list from the original repository instead "
        "(pinned URL and SHA-256, kept in --cache): e.g. 2019."),
    cache: Path | None = typer.Option(
        None, help="Folder of fetched point lists (default: ~/.cache/cropland/points)."),
    base_url: str | None = typer.Option(
        None, help="Where the repository's files are (default: $CROPLAND_POINTS_BASE_URL, "
        "else raw.githubusercontent.com at the pinned commit)."),
    months: Path | None = typer.Option(None, help="Also write the months table here."),
    report: Path | None = typer.Option(None, help="Write every issue (with line) to this CSV."),
    strict: bool = typer.Option(False, help="Fail if any row is rejected."),
) -> None:
    """Import the original CSV format; report rejected rows with their line numbers."""
    from cropland.errors import ConfigError
    from cropland.io import atomic_path
    from cropland.points.original import import_original, write_months
    from cropland.points.table import write_points

    if (original is None) == (published is None):
        raise ConfigError("give the point list's path or --published NAME (e.g. 2019), not both")
    if published is not None:
        from cropland.points.published import fetch_point_list

        original = fetch_point_list(published, cache, base_url)
        typer.echo(f"point list {published}: {original}")
    assert original is not None  # one of the two, checked above
    result = import_original(original, strict=strict)
    write_points(result.points, output)
    if months is not None:
        write_months(result.months, months)
    if report is not None:
        with atomic_path(report) as tmp:
            result.report.to_frame().to_csv(tmp, index=False)
    typer.echo(result.report.summary())
    typer.echo(f"wrote {len(result.points)} points to {output}")


@app.command()
def export(
    points: Path = typer.Argument(..., help="Points table (.csv/.parquet)."),
    output: Path = typer.Option(..., "--output", "-o", help="CSV in the original format."),
    months: Path | None = typer.Option(None, help="Months table from `points import`."),
) -> None:
    """Export a points table in the original CSV format (one row per point and month)."""
    from cropland.points.original import export_original, read_months
    from cropland.points.table import read_points

    table = read_points(points)
    export_original(table, output, read_months(months) if months else None)
    typer.echo(f"wrote {output}")


@app.command()
def label(
    points: Path = typer.Argument(..., help="Points table (.csv/.parquet)."),
    aci: list[str] = typer.Option(..., help="YEAR=PATH_OR_URL, repeat per raster and year."),
    output: Path = typer.Option(..., "--output", "-o", help="Labels table (.csv/.parquet)."),
    rule: str = typer.Option("centre", help="centre, majority or agree."),
    min_share: float = typer.Option(0.5, help="Minimum majority share (majority, agree)."),
    window_m: float = typer.Option(640.0, help="Window side (m)."),
    points_output: Path | None = typer.Option(
        None, help="Also write the points table of the labelled years here."),
) -> None:
    """Label points for each year: centre class, window majority, rotation flags."""
    from cropland.errors import ConfigError
    from cropland.io import write_table
    from cropland.points.aci import open_aci
    from cropland.points.config import LabelRule
    from cropland.points.labels import label_points, to_points_table
    from cropland.points.table import read_points, write_points

    try:
        label_rule = LabelRule(rule=rule, min_share=min_share, window_m=window_m)
    except ValueError as e:
        raise ConfigError(f"invalid label rule: {e}") from None
    rasters: dict[int, list[str]] = {}
    for item in aci:
        year, sep, source = item.partition("=")
        if not sep or not year.strip().isdigit():
            raise ConfigError(f"--aci {item!r}: write YEAR=PATH_OR_URL, e.g. 2019=aci_2019.tif")
        rasters.setdefault(int(year), []).append(source)
    table = read_points(points)
    with ExitStack() as opened:  # every reader opened so far is closed, even on errors
        readers = {year: [opened.enter_context(open_aci(s, year)) for s in sources]
                   for year, sources in rasters.items()}
        labels = label_points(table, readers, label_rule)
    write_table(labels, output)
    if points_output is not None:
        write_points(to_points_table(labels, table), points_output)
    labelled = labels["aci_code"].notna()
    typer.echo(f"{labelled.sum()} of {len(labels)} point-years labelled; "
               f"{labels.loc[labels['rotates'], 'point_id'].nunique()} points rotate; "
               f"wrote {output}")


@app.command("map")
def map_(
    points: Path = typer.Argument(..., help="Points table (.csv/.parquet)."),
    png: Path | None = typer.Option(None, help="PNG map to write."),
    html: Path | None = typer.Option(None, help="Interactive HTML map to write."),
    counts_csv: Path | None = typer.Option(None, "--counts", help="Counts CSV to write."),
    title: str | None = typer.Option(None, help="Map title."),
) -> None:
    """Maps of points coloured by class (PNG, HTML) and counts per class and province."""
    from cropland.io import atomic_path
    from cropland.points.maps import counts, html_map, plot_map
    from cropland.points.table import read_points

    table = read_points(points)
    if png is not None:
        plot_map(table, png, title)
    if html is not None:
        html_map(table, html, title)
    table_counts = counts(table)
    if counts_csv is not None:
        with atomic_path(counts_csv) as tmp:
            table_counts.to_csv(tmp)
    _echo_table(table_counts)


@app.command()
def provinces(
    points: Path = typer.Argument(..., help="Points table, or an original CSV point list."),
    output: Path | None = typer.Option(
        None, "--output", "-o", help="Write the table with provinces from the lookup."),
    mismatches: Path | None = typer.Option(None, help="Write the disagreeing points to a CSV."),
    tolerance_km: float = typer.Option(5.0, help="Distance beyond a boundary still inside."),
) -> None:
    """Check (or set) provinces with the offline lookup; print the agreement."""
    import pandas as pd

    from cropland.errors import PointsError
    from cropland.io import atomic_path
    from cropland.points.original import import_original
    from cropland.points.provinces import agreement, locate
    from cropland.points.table import read_points, write_points

    head = list(pd.read_csv(points, nrows=0).columns) if points.suffix == ".csv" else []
    table = import_original(points).points if "Province Code" in head else read_points(points)
    result = agreement(table, tolerance_km)
    typer.echo(result.summary())
    if mismatches is not None:
        with atomic_path(mismatches) as tmp:
            result.mismatches.to_csv(tmp, index=False)
    if output is not None:
        found = locate(table["lon"], table["lat"], tolerance_km)
        if pd.isna(found).any():
            ids = table.loc[pd.isna(found), "point_id"].unique()[:10].tolist()
            raise PointsError(f"points outside Canada (first ids {ids}); remove them first")
        write_points(table.assign(province=found), output)
        typer.echo(f"wrote {output}")
