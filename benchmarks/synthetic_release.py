"""Write a synthetic release of any size (``cropland.synthetic``): a dataset folder to measure on.

    python benchmarks/synthetic_release.py OUT                         # 78,536 images, 64 x 64
    python benchmarks/synthetic_release.py OUT --images 785360 --patch-size 16 --workers 2

Prints the images, points, time and size on disk. Rerunning completes an interrupted run.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cropland.synthetic import PUBLISHED_IMAGES, write_synthetic_release


def disk_usage(root: Path) -> int:
    """Bytes allocated on disk under ``root`` (blocks, as ``du`` counts)."""
    return sum(p.lstat().st_blocks * 512 for p in root.rglob("*"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--images", type=int, default=PUBLISHED_IMAGES)
    parser.add_argument("--patch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    release = write_synthetic_release(args.out, args.images, patch_size=args.patch_size,
                                      workers=args.workers, seed=args.seed)
    seconds = time.perf_counter() - start
    print(f"{release.images} images of {release.points} points ({release.written} written now) "
          f"in {seconds:.0f} s; {disk_usage(release.root) / 2**30:.2f} GiB in {release.root}")


if __name__ == "__main__":
    main()
