"""Curation without the web stack: scoring and the curated export need no FastAPI."""

from __future__ import annotations

import subprocess
import sys


def test_curation_rules_and_export_import_without_fastapi():
    code = ("import sys; sys.modules['fastapi'] = None; sys.modules['uvicorn'] = None; "
            "import cropland.curate.export, cropland.curate.rules, cropland.curate.cli")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
