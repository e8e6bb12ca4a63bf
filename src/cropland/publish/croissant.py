"""``croissant.json``: the release described in Croissant 1.1 (MLCommons), for dataset search and loaders.

Distribution: one ``FileObject`` per shard (with its SHA-256) and one ``FileSet`` per view.
Record sets: ``classes`` (class index and name), ``static`` and ``temporal`` (one field per
column: images as ``sc:ImageObject`` from the PNG bytes, the 18-channel array as a float
array of fixed shape, the label referencing ``classes``).
"""

from __future__ import annotations

import pyarrow as pa

from cropland import __version__
from cropland.card import ARXIV, CITATION
from cropland.data.channels import TIF_CHANNELS
from cropland.data.shards import ARRAY_COLUMN
from cropland.publish.shards import Shard, schema
from cropland.publish.source import Source

CONFORMS_TO = "http://mlcommons.org/croissant/1.1"
CONTEXT = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "sc": "https://schema.org/",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "dct": "http://purl.org/dc/terms/",
    "citeAs": "cr:citeAs",
    "equivalentProperty": "cr:equivalentProperty",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileObject": "cr:fileObject",
    "fileProperty": "cr:fileProperty",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isArray": "cr:isArray",
    "arrayShape": "cr:arrayShape",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
PARQUET = "application/x-parquet"
_TYPES = {  # arrow type -> Croissant data type
    pa.int8(): "sc:Integer", pa.int16(): "sc:Integer", pa.int32(): "sc:Integer",
    pa.int64(): "sc:Integer", pa.float32(): "sc:Float", pa.float64(): "sc:Float",
    pa.string(): "sc:Text", pa.bool_(): "sc:Boolean",
}
DESCRIPTIONS = {
    "sample_id": "Sample name POINT_{point}_{YYYYMM}_{province}_{CLASS}",
    "sample_ids": "Sample names of the months, in order",
    "point_id": "Point (field centre) id; every image of a point is in one split",
    "year": "Year", "month": "Month (6-10: June to October)", "months": "Months present",
    "province": "Canadian province code", "class_name": "Crop class (folder name)",
    "label": "Class index into the classes record set",
    "aci_code": "AAFC Annual Crop Inventory code of the class",
    "lon": "Longitude of the point (WGS84)", "lat": "Latitude of the point (WGS84)",
    "split": "Split of the point: training, validation or test",
    "synthetic": "True for simulated pixels",
    "n_scenes": "Sentinel-2 scenes in the monthly median composite",
    "cloud_fraction": "Share of observed pixels flagged cloud or shadow",
    "nodata_fraction": "Share of pixels without a clear observation",
    "curation": "Review outcome: accepted, review or rejected (empty when not reviewed)",
    "curation_reasons": "Automatic quality flags, comma-separated",
    ARRAY_COLUMN: "12 Sentinel-2 bands (reflectance) and 6 indices, float32, NaN no data: "
    + ", ".join(TIF_CHANNELS),
}


def _field(record_set: str, fileset: str, f: pa.Field, size: int) -> dict:
    out = {"@type": "cr:Field", "@id": f"{record_set}/{f.name}", "name": f.name}
    if f.name in DESCRIPTIONS:
        out["description"] = DESCRIPTIONS[f.name]
    src = {"fileSet": {"@id": fileset}, "extract": {"column": f.name}}
    dtype = f.type.value_type if pa.types.is_list(f.type) and f.name != ARRAY_COLUMN else f.type
    if pa.types.is_struct(dtype):  # an Image struct: the PNG bytes
        out["dataType"] = "sc:ImageObject"
        src["transform"] = {"jsonPath": "bytes"}
    elif f.name == ARRAY_COLUMN:
        out["dataType"] = "sc:Float"
        out["isArray"] = True
        out["arrayShape"] = f"{len(TIF_CHANNELS)},{size},{size}"
    else:
        out["dataType"] = _TYPES[dtype]
    if pa.types.is_list(f.type) and f.name != ARRAY_COLUMN:
        out["isArray"] = True
        out["arrayShape"] = "-1"
    if f.name == "label":
        out["references"] = {"field": {"@id": "classes/label"}}
    out["source"] = src
    return out


def croissant(source: Source, shards: list[Shard], checksums: dict[str, str], size: int, url: str) -> dict:
    """The Croissant document of a release (a JSON-ready dict)."""
    distribution = [
        {"@type": "cr:FileObject", "@id": s.path, "name": s.path, "contentUrl": s.path,
         "encodingFormat": PARQUET, "sha256": checksums[s.path]}
        for s in shards
    ]
    views = sorted({s.view for s in shards})
    for view in views:
        distribution.append({
            "@type": "cr:FileSet", "@id": f"{view}-parquet", "name": f"{view}-parquet",
            "description": f"The Parquet shards of the {view} view",
            "encodingFormat": PARQUET, "includes": f"data/{view}/*.parquet",
        })
    classes = {
        "@type": "cr:RecordSet", "@id": "classes", "name": "classes",
        "description": "The crop classes: index (the label) and folder name",
        "key": {"@id": "classes/label"},
        "field": [
            {"@type": "cr:Field", "@id": "classes/label", "name": "label", "dataType": "sc:Integer"},
            {"@type": "cr:Field", "@id": "classes/name", "name": "name", "dataType": "sc:Text"},
        ],
        "data": [{"classes/label": i, "classes/name": c} for i, c in enumerate(source.classes)],
    }
    record_sets = [classes]
    for view in views:
        fields = [
            _field(view, f"{view}-parquet", f, size) for f in schema(source, view, size)
            if not (view == "temporal" and pa.types.is_list(f.type) and pa.types.is_struct(f.type.value_type))
        ]
        record_sets.append({
            "@type": "cr:RecordSet", "@id": view, "name": view,
            "description": "One record per sample (point, year, month)" if view == "static"
            else "One record per point and year, its months in order (the shards also hold, per "
            "image type, the list of that year's PNGs, which Croissant 1.1 cannot type)",
            "field": fields,
        })
    years = sorted({r.name.year for r in source.records})
    doc = {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "conformsTo": CONFORMS_TO,
        "name": source.name,
        "description": (
            "Sentinel-2 patches of Canadian fields labelled with crop classes from the AAFC "
            "Annual Crop Inventory, one median composite per month, in the format of the "
            f"Canadian Cropland Dataset (arXiv {ARXIV})."
        ),
        "url": url,
        "version": __version__,
        "license": source.license["url"],
        "citeAs": CITATION,
        "keywords": ["remote sensing", "Sentinel-2", "agriculture", "crop classification",
                     "land cover", "Canada", "multitemporal"],
        "temporalCoverage": f"{years[0]}/{years[-1]}",
        "distribution": distribution,
        "recordSet": record_sets,
    }
    lon, lat = source.table["lon"].dropna(), source.table["lat"].dropna()
    if len(lon):
        doc["spatialCoverage"] = {"@type": "sc:Place", "geo": {
            "@type": "sc:GeoShape", "box": f"{lat.min():.6f} {lon.min():.6f} {lat.max():.6f} {lon.max():.6f}"}}
    return doc
