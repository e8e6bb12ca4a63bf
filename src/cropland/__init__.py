"""cropland: build, curate, package, load and benchmark the Canadian Cropland Dataset."""

__version__ = "0.1.0"
