"""Publishing: a dataset as Parquet shards with a Hugging Face card, Croissant and STAC metadata.

``publish`` writes the release folder (see :mod:`cropland.publish.release`); ``push`` uploads
it to the Hugging Face Hub (:mod:`cropland.publish.hub`).
"""

from cropland.publish.hub import push
from cropland.publish.release import publish

__all__ = ["publish", "push"]
