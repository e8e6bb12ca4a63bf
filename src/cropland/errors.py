"""One exception hierarchy; every message says what to fix."""


class CroplandError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(CroplandError):
    """The configuration is invalid: the message names the field and the fix."""


class NameFormatError(CroplandError, ValueError):
    """A sample file name does not follow POINT_{id}_{YYYYMM}_{PROV}_{CLASS}_{TYPE}."""


class UnknownClassError(CroplandError, KeyError):
    """A crop class name or ACI code is not in the legend."""

    def __str__(self) -> str:  # KeyError quotes its message; keep it readable
        return str(self.args[0]) if self.args else ""


class PointsError(CroplandError):
    """A points table is missing columns or holds impossible values."""


class SourceError(CroplandError):
    """A Sentinel-2 source failed (search or read) after its retries."""


class CredentialsError(SourceError):
    """Credentials a source needs are missing or refused: every job would fail alike, so a
    build stops at once instead of marking them failed."""


class DatasetError(CroplandError):
    """A dataset on disk is incomplete, corrupt or not in the documented format."""
