"""RunResults: what train() returns, what the store keeps, what `layerlab train --json` prints, what the docs define."""
import dataclasses
import json
import math
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from layerlab.cli import app
from layerlab.store import Store
from layerlab.train import RunResults, train

pytestmark = pytest.mark.usefixtures("one_thread")

SPEC = {"data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 10}}], "train": {"examples": 256}}
DOC = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"


def _same(a, b) -> bool:
    """Equal, with NaN equal to NaN (also inside lists and dicts)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_train_returns_run_results_that_round_trip_through_the_store(tmp_path):
    store = Store(tmp_path / "r.db")
    results = train(SPEC, store=store)
    assert isinstance(results, RunResults)
    assert results.status == "finished" and results.task == "classification" and results.loss == "cross_entropy"
    assert results.run_id is not None and results.examples == 256 == results.total_examples
    assert 0 <= results.test_accuracy <= 1 and 0 <= results.step0_test_accuracy <= 1
    assert results.best_test_accuracy >= results.test_accuracy
    assert results.examples_per_sec > 0 and results.train_time_s > 0 and results.elapsed_s >= results.train_time_s
    assert results.inferences_per_sec > 0 and results.latency_ms_b1 > 0 and results.inference_batch_size == 512
    assert results.params == 64 * 10 + 10 and results.steps == 256 // 64  # default batch size 64
    assert len(results.confusion["matrix"]) == 10 and len(results.worst) == 10
    assert results.diverged_at_step is None and results.evidence is None and results.stop_reason is None
    assert results.eval_subset == 359 and results.eval_every == 13  # digits' whole test split; 256 / 20 examples
    assert 0 < results.eval_time_s < results.elapsed_s

    stored = store.get_run(results.run_id)["results"]
    assert stored == json.loads(json.dumps(results.to_json()))  # plain JSON data, every field
    back = RunResults.from_json(stored)
    for f in dataclasses.fields(RunResults):
        assert _same(getattr(back, f.name), getattr(results, f.name)), f.name


def test_from_json_reads_old_stores_and_nan_strings():
    assert RunResults.from_json(None) is None
    old = {"status": "diverged", "task": "classification", "test_accuracy": "NaN", "test_loss": "Infinity",
           "train_loss": "-Infinity", "examples": 100, "history": [{"epoch": 1, "test_loss": "NaN"}],
           "retired_key": 1}  # no inference_batch_size, no diagnoses, ...; a key the class no longer knows
    r = RunResults.from_json(old)
    assert r.status == "diverged" and r.examples == 100
    assert math.isnan(r.test_accuracy) and r.test_loss == math.inf and r.train_loss == -math.inf
    assert math.isnan(r.history[0]["test_loss"])
    assert r.inference_batch_size is None and r.confusion is None and r.diagnoses == []
    assert not hasattr(r, "retired_key") and "retired_key" not in r.to_json()
    assert set(r.to_json()) == {f.name for f in dataclasses.fields(RunResults)}


def test_train_json_prints_exactly_the_json_form(tmp_path):
    db = str(tmp_path / "cli.db")
    result = CliRunner().invoke(app, ["train", "linear", "--dataset", "digits", "--examples", "256", "--json",
                                      "--db", db])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.stdout)
    assert set(printed) == {f.name for f in dataclasses.fields(RunResults)}
    stored = Store(db).get_run(printed["run_id"])["results"]
    assert printed == json.loads(json.dumps(RunResults.from_json(stored).to_json()))


def _documented_fields() -> list[str]:
    text = DOC.read_text()
    section = re.search(r"^## Run results.*?$(.*?)(?=^## )", text, re.S | re.M)
    assert section, "docs/metrics.md has no 'Run results' section"
    return re.findall(r"^\| `([a-z0-9_]+)` \|", section.group(1), re.M)


def test_every_field_is_documented_once():
    documented = _documented_fields()
    fields = [f.name for f in dataclasses.fields(RunResults)]
    assert sorted(documented) == sorted(fields), set(documented) ^ set(fields)
    assert len(documented) == len(set(documented))
