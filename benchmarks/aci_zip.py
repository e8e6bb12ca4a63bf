"""Benchmark: one window of a zipped ACI GeoTIFF read over HTTP through /vsizip//vsicurl/.

Writes an incompressible 4096 x 4096 uint8 GeoTIFF (tiled 256 x 256), zips it twice (members
stored, and deflated as zip tools do by default), serves the folder on loopback with HTTP
range requests, and reads one 64 x 64 window near the end of each zip with
:class:`cropland.points.aci.RasterioAci`: bytes sent by the server and wall time. The figures
replace the "Zipped ACI over HTTP" section of docs/benchmarks.md.

    python benchmarks/aci_zip.py
"""

from __future__ import annotations

import sys
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
from rasterio.windows import Window

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parents[1]))
from _doc import provenance, write_section  # noqa: E402

from cropland.points.aci import RasterioAci  # noqa: E402
from tests.points.aci_fields import write_aci  # noqa: E402
from tests.sources.loopback import RangeServer  # noqa: E402

SIZE, ROW, COL = 4096, 3500, 3000


def measure(root: Path, archive: Path, expected: np.ndarray) -> tuple[int, float]:
    server = RangeServer(root)
    try:
        started = time.perf_counter()
        with RasterioAci(f"{server.url}/{archive.name}", 2019) as reader:
            got = reader.read(Window(COL, ROW, 64, 64))
        seconds = time.perf_counter() - started
    finally:
        server.stop()
    assert (got == expected).all()
    return server.counters.bytes, seconds


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = np.random.default_rng(0).integers(1, 255, (SIZE, SIZE), dtype=np.uint8)
        tif = write_aci(root / "aci.tif", data, block=256)
        rows = []
        for name, how in (("stored", zipfile.ZIP_STORED), ("deflated", zipfile.ZIP_DEFLATED)):
            archive = root / f"aci_{name}.zip"
            with zipfile.ZipFile(archive, "w", how) as z:
                z.write(tif, "aci_2019/aci_2019.tif")
            sent, seconds = measure(root, archive, data[ROW:ROW + 64, COL:COL + 64])
            rows.append(f"| {name} | {archive.stat().st_size / 2**20:.1f} MiB | "
                        f"{sent / 2**10:,.0f} KiB | {seconds:.2f} s |")
    markdown = "\n".join([
        "## Zipped ACI over HTTP", "",
        provenance("python benchmarks/aci_zip.py"), "",
        f"One 64 x 64 window near the end of a {SIZE} x {SIZE} uint8 GeoTIFF (tiled 256 x 256, "
        "incompressible) inside a zip served on loopback, read through `/vsizip//vsicurl/`. "
        "A stored member is read by range requests; GDAL streams a deflated one from its start "
        "up to the window, so a deflated zip is better downloaded once and read locally.", "",
        "| zip member | zip size | bytes sent | time |", "|---|---:|---:|---:|", *rows])
    print(markdown)
    write_section("aci_zip", markdown)


if __name__ == "__main__":
    main()
