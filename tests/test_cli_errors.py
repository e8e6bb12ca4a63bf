"""The `cropland` entry point turns a CroplandError into one line on stderr and status 2."""

from __future__ import annotations

import pytest

import cropland.cli
from cropland.errors import DatasetError


def test_error_message_is_printed_verbatim(monkeypatch, capsys):
    message = "files [/tmp/a.tif, /tmp/b.tif] differ; see [bold] docs"  # not Rich markup

    def fail(**kwargs) -> None:
        raise DatasetError(message)

    monkeypatch.setattr(cropland.cli, "app", fail)
    with pytest.raises(SystemExit) as exit_info:
        cropland.cli.run()
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.split() == ["error:", *message.split()]
