import pytest

from cropland.core.naming import SampleName
from cropland.errors import DatasetError
from cropland.extraction.manifest import Manifest, TaskResult, task_id


def _samples():
    return [SampleName(p, 2019, m, "AB", "BARLEY") for p in (1, 2) for m in (6, 7)]


def test_states_survive_reopening(tmp_path):
    with Manifest(tmp_path / "m.sqlite") as m:
        m.add(_samples())
        m.record([TaskResult("1_201906", "done", "tif/x.tif"), TaskResult("2_201907", "failed", reason="HTTP 503")])
        m.add(_samples())  # re-adding keeps states
    with Manifest(tmp_path / "m.sqlite") as m:
        assert m.counts() == {"pending": 2, "done": 1, "failed": 1}
        assert m.todo() == {"1_201907", "2_201906"}
        assert m.todo(retry_failed=True) == {"1_201907", "2_201906", "2_201907"}
        assert m.failures() == [("2_201907", "HTTP 503")]


def test_done_task_whose_file_vanished_is_redone(tmp_path):
    (tmp_path / "tif").mkdir()
    (tmp_path / "tif" / "a.tif").write_bytes(b"x")
    with Manifest(tmp_path / "m.sqlite") as m:
        m.add(_samples())
        m.record([TaskResult("1_201906", "done", "tif/a.tif"), TaskResult("1_201907", "done", "tif/b.tif")])
        assert m.reset_missing(tmp_path) == 1
        assert "1_201907" in m.todo() and "1_201906" not in m.todo()


def test_task_id_ignores_the_label():
    assert task_id(SampleName(7, 2020, 9, "QC", "CORN")) == "7_202009"


def test_a_corrupt_manifest_says_what_to_do(tmp_path):
    path = tmp_path / "manifest.sqlite"
    path.write_bytes(b"not a database, just bytes" * 100)
    with pytest.raises(DatasetError, match="delete it and rerun"):
        Manifest(path)
