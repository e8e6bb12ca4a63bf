"""The original release as downloaded: one zip per year and image type, PNG trees inside.

The published dataset was distributed as zip files (``2019_RGB.zip`` ...) holding the tree
``{year}/{TYPE}/{split}/{CLASS}/POINT_..._{TYPE}.png`` (any leading folders are accepted).
:class:`ZipTreeReader` reads the PNGs in place, without unpacking, so the release can be
loaded or republished (``cropland publish``) as it was downloaded.
"""

from __future__ import annotations

import zipfile
from collections.abc import Sequence
from pathlib import Path, PurePosixPath
from typing import Self

import numpy as np

from cropland.core.naming import IMAGE_TYPES, SampleName
from cropland.data.channels import png_channels
from cropland.data.readers import SPLITS, PngTreeReader, SampleRecord, read_png
from cropland.errors import DatasetError, NameFormatError

#: The original release's licence (carried over when it is republished).
MONTREAL_DATA_LICENSE = {
    "id": "other",
    "name": "Montreal Data License",
    "url": "https://github.com/bioinfoUQAM/Canadian-cropland-dataset/blob/main/DATA_LICENSE",
    "summary": "CC BY 4.0 terms, for research and discovery, not for commercial purposes",
}


def _is_png_member(info: zipfile.ZipInfo) -> bool:
    name = PurePosixPath(info.filename)
    return (
        not info.is_dir()
        and name.suffix.lower() == ".png"
        and not name.name.startswith("._")  # macOS resource forks
        and "__MACOSX" not in name.parts
    )


class ZipTreeReader(PngTreeReader):
    """The original zips in a folder (or one zip), read in place; the split is each PNG's folder.

    Args:
        root: a folder of ``.zip`` files, or one ``.zip``.
        image_types: the image types to read (default: every type found).
    """

    def __init__(self, root: str | Path, image_types: Sequence[str] | None = None) -> None:
        self.root = Path(root)
        self.zips = [self.root] if self.root.is_file() else sorted(self.root.glob("*.zip"))
        if not self.zips:
            raise DatasetError(f"{self.root} holds no .zip files of the original release")
        self.members: dict[tuple[SampleName, str], tuple[Path, str]] = {}
        splits: dict[SampleName, str] = {}
        for path in self.zips:
            self._index(path, splits)
        found = {t for _, t in self.members}
        self.image_types = tuple(t for t in (image_types or IMAGE_TYPES) if t in found)
        if not self.image_types:
            raise DatasetError(
                f"{self.root}: no PNG of the image types {', '.join(image_types or IMAGE_TYPES)} "
                f"in its zips (found {', '.join(sorted(found)) or 'none'})"
            )
        self.channels = tuple(c for t in self.image_types for c in png_channels(t))
        first = self.image_types[0]
        records = [SampleRecord(name, splits[name]) for name, t in self.members if t == first]
        self._finish(records, f"the zips in {self.root}")
        self._split_of = {r.name.point_id: r.split for r in self.records}
        self._open: dict[Path, zipfile.ZipFile] = {}

    def _index(self, path: Path, splits: dict[SampleName, str]) -> None:
        try:
            with zipfile.ZipFile(path) as zf:
                infos = [i for i in zf.infolist() if _is_png_member(i)]
        except (zipfile.BadZipFile, OSError) as e:
            raise DatasetError(f"{path} is not a readable zip ({e}); download it again") from None
        for info in infos:
            parts = PurePosixPath(info.filename).parts
            origin = f"{path}!{info.filename}"
            try:
                name, image_type = SampleName.parse(parts[-1])
            except NameFormatError as e:
                raise DatasetError(f"{origin}: {e}") from None
            if image_type is None or len(parts) < 3 or parts[-3] not in SPLITS:
                raise DatasetError(
                    f"{origin} is not in a {{split}}/{{CLASS}}/NAME_{{TYPE}}.png tree "
                    f"(split folders: {', '.join(SPLITS)})"
                )
            if splits.setdefault(name, parts[-3]) != parts[-3]:
                raise DatasetError(f"{origin}: {name.stem} is also under {splits[name]}")
            self.members[(name, image_type)] = (path, info.filename)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_open"] = {}  # open zip handles stay in their process
        return state

    def subset(self, indices: Sequence[int]) -> Self:
        part = super().subset(indices)
        part.members = {key: self.members[key] for r in part.records for t in self.image_types
                        if (key := (r.name, t)) in self.members}
        part._open = {}
        return part

    def _member(self, index: int, image_type: str) -> tuple[Path, str]:
        name = self.records[index].name
        try:
            return self.members[(name, image_type)]
        except KeyError:
            raise DatasetError(
                f"the zips in {self.root} have no {image_type} PNG of {name.stem}"
            ) from None

    def png_bytes(self, index: int, image_type: str) -> bytes:
        path, member = self._member(index, image_type)
        if path not in self._open:
            self._open[path] = zipfile.ZipFile(path)
        return self._open[path].read(member)

    def read_png(self, index: int, image_type: str) -> np.ndarray:
        path, member = self._member(index, image_type)
        return read_png(f"{path}!{member}", image_type, self.png_bytes(index, image_type))

    def expected_path(self, name: SampleName) -> str:
        path, member = self.members.get((name, self.image_types[0]), (self.root, name.stem))
        return f"{path}!{member}"
