"""Studies fail honestly: all members failing is a failed study (exit 1, record failed, the shared cause said
once); some failing is named in the result, never hidden behind "Best: …, — test accuracy".

The failures are real: MNIST files that are there (so every member passes its checks) but are not
IDX files, so each member run fails when it loads its data, as a corrupt download would.
"""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from layerlab.cli import app
from layerlab.data.fetch import SYSTEM_DATA_DIR
from layerlab.store import Store
from layerlab.studies.record import find_records, load_record

MNIST_FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
               "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
CAUSE = "not an IDX file (bad magic number"


@pytest.fixture
def env(tmp_path, monkeypatch):
    """A temp store and data root; returns (store url, data root)."""
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    monkeypatch.setenv("LAYERLAB_DB", url)
    monkeypatch.setenv("LAYERLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return url, tmp_path / "data"


def _broken_mnist(root) -> None:
    (root / "mnist").mkdir(parents=True)
    for name in MNIST_FILES:
        (root / "mnist" / name).write_bytes(b"these bytes are not MNIST\n")


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_a_study_whose_members_all_fail_exits_non_zero_naming_the_cause(env, tmp_path):
    url, root = env
    _broken_mnist(root)
    result = _cli("study", "classifiers", "--quick", "--opt", "dataset=mnist", "--out", tmp_path / "out")
    text = " ".join((result.output + result.stderr).split())  # rich wraps long lines
    assert result.exit_code == 1, text
    assert "Best:" not in text and "— test accuracy" not in text
    assert "all 6 members failed, each with the same error: DataError:" in text and CAUSE in text
    store = Store(url)
    record = find_records(store, name="classifiers")[0]
    assert record["status"] == "failed" and "all 6 members failed" in record["error"] and CAUSE in record["error"]
    members = store.list_runs(parent=record["id"])
    assert len(members) == 6 and {m["status"] for m in members} == {"failed"}


def test_a_sweep_with_some_members_failing_names_them(env, tmp_path):
    url, root = env
    _broken_mnist(root)
    result = _cli("sweep", "linear", "--set", "data.dataset=fashion-mnist,mnist", "--set", "data.train_size=200",
                  "--set", "data.test_size=100", "--json", "--out", tmp_path / "out")
    assert result.exit_code == 0, result.output + result.stderr
    data = json.loads(result.stdout)
    [failed] = data["failed"]
    assert failed["label"] == "dataset=mnist" and CAUSE in failed["error"]
    assert data["text"].startswith(f"1 of 2 members failed: run {failed['run_id']} (dataset=mnist): DataError:")
    assert "Best: dataset=fashion-mnist" in data["text"]  # the best is among the members that ran
    store = Store(url)
    record = store.get_run(data["record_id"])
    assert record["status"] == "finished"
    assert load_record(store, record["id"])["failed"] == data["failed"]  # kept in the store, for the report
    assert "1 of 2 members failed" in " ".join(result.stderr.split())


def test_members_refused_for_one_shared_reason_are_told_once(env, tmp_path):
    if (SYSTEM_DATA_DIR / "mnist").exists():
        pytest.skip(f"MNIST is installed in {SYSTEM_DATA_DIR}; this test needs it missing")
    result = _cli("study", "classifiers", "--quick", "--opt", "dataset=mnist", "--out", tmp_path / "out")
    text = " ".join(result.stderr.split())
    assert result.exit_code == 2
    assert text.count("data set 'mnist' is not on this machine") == 1
    assert "with all 6 members: data.dataset: data set 'mnist' is not on this machine" in text
    assert "layerlab data fetch mnist" in text
    assert Store(env[0]).list_runs() == []  # refused before anything was written
