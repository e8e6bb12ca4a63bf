"""The release's ``README.md`` (Hugging Face dataset card), ``CITATION.cff`` and ``SHA256SUMS``."""

from __future__ import annotations

from pathlib import Path

import yaml

from cropland.card import ARXIV
from cropland.data.channels import TIF_CHANNELS
from cropland.data.readers import sha256_file
from cropland.data.shards import ARRAY_COLUMN, CHECKSUMS, image_column
from cropland.publish.shards import Shard
from cropland.publish.source import Source

PAPER = {
    "title": "The Canadian Cropland Dataset: A New Land Cover Dataset for Multitemporal Deep "
    "Learning Classification in Agriculture",
    "authors": [
        {"family-names": "Boatswain Jacques", "given-names": "Amanda A."},
        {"family-names": "Diallo", "given-names": "Abdoulaye Baniré"},
        {"family-names": "Lord", "given-names": "Etienne"},
    ],
    "year": 2023,
    "doi": f"10.48550/arXiv.{ARXIV}",
}


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                        (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "1M<n<10M"


def _data_files(shards: list[Shard], view: str) -> list[dict]:
    splits = dict.fromkeys(s.split for s in shards if s.view == view)
    hf = {s.split: s.path.split("/")[-1].split("-")[0] for s in shards if s.view == view}
    return [{"split": hf[s], "path": f"data/{view}/{hf[s]}-*.parquet"} for s in splits]


def configs(source: Source, shards: list[Shard]) -> list[dict]:
    """The card's ``configs``: the static view whole (default), one per image type, temporal."""
    static = _data_files(shards, "static")
    meta = ["sample_id", "point_id", "year", "month", "province", "class_name", "label",
            "lon", "lat", "split"]
    out = [{"config_name": "default", "default": True, "data_files": static}]
    for t in source.image_types:
        out.append({"config_name": image_column(t), "data_files": static, "columns": meta + [image_column(t)]})
    if source.arrays is not None:
        out.append({"config_name": ARRAY_COLUMN, "data_files": static, "columns": meta + [ARRAY_COLUMN]})
    if any(s.view == "temporal" for s in shards):
        out.append({"config_name": "temporal", "data_files": _data_files(shards, "temporal")})
    return out


def readme(source: Source, shards: list[Shard], size: int, repo: str | None = None) -> str:
    """The dataset card: YAML header for the Hub, then how to load it and the dataset's card."""
    header = {
        "license": source.license["id"],
        **({"license_name": _slug(source.license["name"]), "license_link": source.license["url"]}
           if source.license["id"] == "other" else {}),
        "pretty_name": source.name,
        "task_categories": ["image-classification"],
        "tags": ["remote-sensing", "sentinel-2", "agriculture", "crop-classification",
                 "earth-observation", "multitemporal", "croissant", "stac"],
        "size_categories": [_size_category(len(source.records))],
        "configs": configs(source, shards),
    }
    types = ", ".join(f"`{image_column(t)}`" for t in source.image_types)
    array = (
        f"- `{ARRAY_COLUMN}`: the 18 channels ({', '.join(TIF_CHANNELS)}) as float32, shape "
        f"(18, {size}, {size}), NaN where no clear observation: the GeoTIFFs' values bit for "
        "bit (Hugging Face `Array3D`).\n" if source.arrays is not None else ""
    )
    body = f"""# {source.name}

Licence: [{source.license['name']}]({source.license['url']}) ({source.license['summary']}).

## Load it

```python
from datasets import load_dataset
ds = load_dataset("parquet", data_dir="data/static")        # or load_dataset("REPO") from the Hub
ds["train"][0]["rgb"]                                        # a PIL image
rgb = load_dataset("REPO", "rgb", split="train")             # one image type (configs below)
```

```python
from cropland.data import open_reader, StaticDataset          # pip install cropland
reader = open_reader("hf://datasets/REPO", channels="RGB")     # or a local folder
train = StaticDataset(reader, "training", channels="RGB")
```

## Files

- `data/static/{{split}}-*.parquet`: one row per sample (a point in one month of one year):
  {types} (PNG bytes as published, Hugging Face `Image`), `label` (class index),
  `class_name`, `point_id`, `year`, `month`, `province`, `lon`, `lat`, `split`, `aci_code`,
  quality and curation fields.
{array}- `data/temporal/{{split}}-*.parquet`: one row per point and year: `months`, `sample_ids` and
  per image type the list of that year's PNGs.
- `croissant.json` (Croissant 1.1), `stac/collection.json` (a STAC collection, one item per
  point and year with the patch footprint), `CITATION.cff`, `{CHECKSUMS}` (`sha256sum -c {CHECKSUMS}`).
- Classes (label index: name): {', '.join(f'{i}: {c}' for i, c in enumerate(source.classes))}.

"""
    body = body.replace("REPO", repo or "USER/NAME")
    card = source.card.split("\n", 1)[1] if source.card.startswith("# ") else source.card
    return "---\n" + _yaml(header) + "---\n\n" + body + card.lstrip("\n")


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data) -> bool:  # the Hub reads plain YAML: repeat, never alias
        return True


def _yaml(doc: dict) -> str:
    return yaml.dump(doc, Dumper=_NoAliases, sort_keys=False, allow_unicode=True)


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")


def citation(source: Source) -> str:
    """``CITATION.cff``: the release, citing the dataset's paper as the preferred citation."""
    doc = {
        "cff-version": "1.2.0",
        "message": "If you use this dataset, please cite the Canadian Cropland Dataset paper.",
        "type": "dataset",
        "title": source.name,
        "authors": PAPER["authors"] if source.original else [{"name": "cropland"}],
        **({"license": "MIT"} if source.license["id"] == "mit" else {"license-url": source.license["url"]}),
        "keywords": ["Sentinel-2", "agriculture", "crop classification", "Canada"],
        "preferred-citation": {
            "type": "article", "title": PAPER["title"], "authors": PAPER["authors"],
            "year": PAPER["year"], "journal": f"arXiv preprint arXiv:{ARXIV}",
            "doi": PAPER["doi"], "url": f"https://arxiv.org/abs/{ARXIV}",
        },
    }
    return _yaml(doc)


def checksums(out: Path) -> str:
    """``sha256sum`` lines for every file of the release but the checksum file, sorted."""
    files = sorted(p for p in out.rglob("*") if p.is_file() and p.name != CHECKSUMS
                   and not any(part.startswith(".") for part in p.relative_to(out).parts))
    return "".join(f"{sha256_file(p)}  {p.relative_to(out).as_posix()}\n" for p in files)

