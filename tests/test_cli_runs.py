"""`layerlab train`, `runs` (list/show/compare/rename/delete) and `predict` against a temp store."""
import json

import pytest
from typer.testing import CliRunner

from layerlab.cli import app


@pytest.fixture
def db(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    monkeypatch.setenv("LAYERLAB_DB", url)
    return url


def cli(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result


def _train(*extra, preset="fc10-relu-fc10", dataset="digits"):
    result = cli("train", preset, "--dataset", dataset, "--epochs", "2", "--json", *extra)
    assert result.exit_code == 0, result.output + result.stderr
    return json.loads(result.stdout)


def test_train_json_results_and_runs_views(db, tmp_path):
    first = _train("--lr", "0.1", "--name", "small-lr")
    assert first["status"] == "finished" and first["run_id"] == 1
    assert first["examples"] == 2 * 1438
    assert 0.4 < first["test_accuracy"] <= 1.0  # 90 updates of the preset (Model Builder init): 49% here
    assert 0.0 < first["step0_test_accuracy"] < 0.3  # an untrained 10-class net is right about 1 time in 10
    assert first["examples_per_sec"] > 0 and first["inferences_per_sec"] > 0 and first["latency_ms_b1"] > 0
    second = _train("--lr", "10", "--set", "train.momentum=0.9", "--set", "data.train_size=2000",
                    "--set", "data.test_size=1000", "--name", "huge-lr", preset="fc100-relu-fc10",
                    dataset="fashion-mnist")
    assert second["status"] == "diverged" and "learning rate 10 is too high" in second["diagnosis"]

    listing = json.loads(cli("runs", "--json").stdout)
    assert [(r["id"], r["status"]) for r in listing] == [(2, "diverged"), (1, "finished")]
    assert listing[1]["dataset"] == "digits" and listing[1]["model"] == "fc10-relu-fc10"
    assert listing[0]["dataset"] == "fashion-mnist"
    table = cli("runs", "--status", "finished").stdout
    assert "small-lr" in table and "huge-lr" not in table

    shown = json.loads(cli("runs", "show", 1, "--json").stdout)
    assert shown["results"]["test_accuracy"] == first["test_accuracy"]
    assert "test_accuracy" in shown["last_metrics"]

    png = tmp_path / "compare.png"
    compared = cli("runs", "compare", 1, 2, "--plot", png, "--json")
    assert compared.exit_code == 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [r["status"] for r in json.loads(compared.stdout)] == ["finished", "diverged"]

    preds = json.loads(cli("predict", 1, "--json").stdout)["predictions"]
    assert len(preds) == 20 and all(len(p["top"]) == 3 for p in preds)
    assert all(p["correct"] == (p["top"][0][0] == p["label"]) for p in preds)
    grid = tmp_path / "preds.png"
    assert cli("predict", 1, "--grid", grid).exit_code == 0 and grid.stat().st_size > 1000

    assert cli("runs", "rename", 1, "baseline").exit_code == 0
    assert json.loads(cli("runs", "show", 1, "--json").stdout)["name"] == "baseline"
    assert cli("runs", "delete", 2).exit_code == 0
    assert [r["id"] for r in json.loads(cli("runs", "--json").stdout)] == [1]


def test_user_errors_exit_2_with_a_message(db):
    missing = cli("runs", "show", 99)
    assert missing.exit_code == 2 and "run 99 not found" in missing.stderr
    bad = cli("train", "fc10-relu-fc10", "--set", "train.lr=-1")
    assert bad.exit_code == 2 and "train.lr: must be > 0.0, got -1" in bad.stderr
    invalid = cli("train", "fc10-relu-fc10", "--dataset", "toy-functions/max")
    assert invalid.exit_code == 2 and "toy-functions/max has 1 target value(s)" in invalid.stderr
    assert json.loads(cli("runs", "--json").stdout) == []  # nothing half-created


def test_dead_relus_are_explained_not_crashed(db):
    result = _train("--lr", "10", "--set", "train.momentum=0.9", "--set", "train.init=default")  # some ReLUs die
    assert result["status"] == "finished" and result["test_accuracy"] < 0.3
    assert "dead ReLUs" in result["diagnosis"] and "lower the learning rate" in result["diagnosis"]


def test_train_resume_takes_no_spec_and_continues_a_stopped_run(db):
    """The README's `layerlab train --resume ID` (it used to exit 2: "Missing argument 'source'")."""
    import threading

    from layerlab.store import Store
    from layerlab.train import train
    stop = threading.Event()
    stop.set()  # stops after the first update, keeping what it learned
    spec = {"data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 10}}], "train": {"examples": 640}}
    first = train(spec, store=Store(db), stop_event=stop)
    assert first.status == "stopped" and first.examples < 640
    result = cli("train", "--resume", first.run_id, "--json")
    assert result.exit_code == 0, result.output + result.stderr
    resumed = json.loads(result.stdout)
    assert (resumed["run_id"], resumed["status"], resumed["examples"]) == (first.run_id, "finished", 640)
    both = cli("train", "fc10-relu-fc10", "--resume", first.run_id)
    assert both.exit_code == 2 and "not both" in both.stderr
    assert cli("train").exit_code == 2
