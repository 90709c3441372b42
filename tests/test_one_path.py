"""One path from a spec to a run: every entry point refuses the same bad specs with the same problems.

The same table of bad specs goes through ``layerlab validate``, ``layerlab train``, the API's
run creation, a one-trial sweep and a study member. Each must list the same problems (with a
non-empty fix each, and the category the table expects) and leave no run row behind.
"""
from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from layerlab.cli import app as cli_app
from layerlab.errors import (PROBLEM_CATEGORIES, Conflict, DataUnavailable, InvalidSpec, LayerlabError, NotFound,
                             RunConflict, RunNotFound, StoreUnavailable, UnknownDataset, DataTooLarge,
                             ModelTooLarge, OutOfMemory, PredictionFailed)
from layerlab.prepare import prepare_run
from layerlab.server.app import create_app
from layerlab.store import Store
from layerlab.studies.common import Member, study_record
from layerlab.studies.sweep import sweep

BASE = {"name": "t", "data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 10}}],
        "train": {"examples": 64}}


def variant(**changes) -> dict:
    """BASE with top-level sections replaced or updated: variant(train={"lr": 0}) keeps train.examples."""
    spec = copy.deepcopy(BASE)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(spec.get(key), dict):
            spec[key] = {**spec[key], **value}
        else:
            spec[key] = value
    return spec


# (id, spec data, the category of each problem expected, in order)
BAD_SPECS = [
    ("unknown-top-field", variant(nmae="x"), ["field"]),
    ("empty-name", variant(name=""), ["field"]),
    ("unknown-dataset", variant(data={"dataset": "mnsit"}), ["field"]),
    ("bad-normalize", variant(data={"normalize": "0..2"}), ["field"]),
    ("train-size-zero", variant(data={"train_size": 0}), ["field"]),
    ("lr-zero", variant(train={"lr": 0}), ["field"]),
    ("batch-size-text", variant(train={"batch_size": "many"}), ["field"]),
    ("unknown-optimizer", variant(train={"optimizer": "adamm"}), ["field"]),
    ("unknown-init", variant(train={"init": "bogus"}), ["field"]),
    ("unknown-train-field", variant(train={"learning_rate": 0.1}), ["field"]),
    ("model-not-a-list", variant(model=5), ["field"]),
    ("unknown-preset", variant(model="preset/nope"), ["field"]),
    ("unknown-layer-kind", variant(model=["flatten", "bogus", {"fc": {"units": 10}}]), ["layer"]),
    ("malformed-layer", variant(model=[[1, 2], {"fc": {"units": 10}}]), ["layer"]),
    ("layer-params-not-mapping", variant(model=["flatten", {"fc": 5}]), ["layer"]),
    ("units-zero", variant(model=["flatten", {"fc": {"units": 0}}]), ["field"]),
    ("unknown-layer-param", variant(model=["flatten", {"fc": {"unit": 10}}]), ["field"]),
    ("bad-layer-init", variant(model=["flatten", {"fc": {"units": 10, "init": "nope"}}]), ["field"]),
    ("fc-on-an-image", variant(model=[{"fc": {"units": 10}}]), ["shape"]),
    ("conv-on-flat", variant(model=["flatten", {"conv2d": {"field": 3}}, "flatten", {"fc": {"units": 10}}]),
     ["shape"]),
    ("reshape-size", variant(model=["flatten", {"reshape": {"shape": [1, 8, 7]}}, "flatten", {"fc": {"units": 10}}]),
     ["shape"]),
    ("pool-too-big", variant(model=[{"maxpool2d": {"field": 9, "stride": 9}}, "flatten", {"fc": {"units": 10}}]),
     ["shape"]),
    ("no-layers", variant(model=[]), ["shape"]),
    ("wrong-output-size", variant(model=["flatten", {"fc": {"units": 7}}]), ["objective"]),
    ("cross-entropy-on-regression", variant(data={"dataset": "toy-functions/max"}, model=[{"fc": {"units": 1}}],
                                            train={"loss": "cross_entropy"}), ["objective"]),
    ("classify-regression-data", variant(data={"dataset": "toy-functions/max"}, model=[{"fc": {"units": 1}}],
                                         train={"task": "classification"}), ["objective"]),
    ("nesterov-without-momentum", variant(train={"optimizer": "nesterov", "momentum": 0}), ["optimizer"]),
    ("over-the-memory-budget", variant(model=["flatten", {"fc": {"units": 5_000_000}}, {"fc": {"units": 10}}]),
     ["budget"]),
    ("missing-data-set", variant(data={"dataset": "mnist"}, model=["flatten", {"fc": {"units": 10}}]), ["data"]),
    ("several-at-once", variant(model=["flatten", {"fc": {"units": 0}}], train={"lr": 0, "momentum": 2}),
     ["field", "field", "field"]),
]


def test_the_table_covers_every_problem_class():
    seen = {cat for _, _, cats in BAD_SPECS for cat in cats}
    assert seen == set(PROBLEM_CATEGORIES) - {"source", "syntax", "advice"}  # those come before a spec exists
    assert len(BAD_SPECS) >= 20


@pytest.fixture
def no_downloaded_data(tmp_path, monkeypatch):
    """MNIST is not on this machine (only Fashion-MNIST is, from Debian's package)."""
    monkeypatch.setenv("LAYERLAB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "runs.db")


def _key(problems: list[dict]) -> list[dict]:
    """Problems as data, without the context a sweep or study adds (it names the member)."""
    return [{k: v for k, v in p.items() if k != "context"} for p in problems]


def _via_validate(path, store) -> tuple[list[dict], type | int]:
    result = CliRunner().invoke(cli_app, ["validate", str(path), "--json"])
    assert result.exit_code == 2, result.output
    return json.loads(result.stdout)["problems"], 2


def _via_train(path, store) -> tuple[list[dict], type | int]:
    result = CliRunner().invoke(cli_app, ["train", str(path), "--db", store.url, "--json"])
    assert result.exit_code == 2, result.output
    body = json.loads(result.stdout)
    return body["problems"], body["error"]


def _via_api(path, store) -> tuple[list[dict], type | int]:
    client = TestClient(create_app(store, workers=1), base_url="http://127.0.0.1")  # no lifespan: no worker starts
    resp = client.post("/api/runs", json={"spec": yaml.safe_load(path.read_text())})
    assert resp.status_code in (400, 409), resp.text
    return resp.json()["problems"], resp.status_code


def _via_sweep(path, store) -> tuple[list[dict], type | int]:
    with pytest.raises(InvalidSpec) as info:
        sweep(yaml.safe_load(path.read_text()), ["train.seed=0"], store=store, out_dir=path.parent)
    return [p.to_dict() for p in info.value.problems], type(info.value).__name__


def _via_study(path, store) -> tuple[list[dict], type | int]:
    member = Member("the member", yaml.safe_load(path.read_text()))
    with pytest.raises(InvalidSpec) as info:
        with study_record(store, "one-member", title="t", options={}, dataset="digits", members=[member]):
            raise AssertionError("the study body must not run")
    problems = [p.to_dict() for p in info.value.problems]
    assert {p["context"] for p in problems} == {"the member"}
    return problems, type(info.value).__name__


ENTRY_POINTS = {"validate": _via_validate, "train": _via_train, "api": _via_api, "sweep": _via_sweep,
                "study": _via_study}


@pytest.mark.parametrize("name,spec,categories", BAD_SPECS, ids=[b[0] for b in BAD_SPECS])
def test_every_entry_point_refuses_a_bad_spec_alike(name, spec, categories, tmp_path, store, no_downloaded_data):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(spec))
    seen = {}
    for entry, call in ENTRY_POINTS.items():
        problems, how = call(path, store)
        seen[entry] = _key(problems)
        assert store.list_runs() == [], f"{entry} left a run row behind"
        if entry == "api":
            assert how == (409 if categories == ["data"] else 400)
        elif entry != "validate":
            assert how == ("DataUnavailable" if categories == ["data"] else "InvalidSpec")
    first = seen["validate"]
    for entry, problems in seen.items():
        assert problems == first, f"{entry} disagrees with validate"
    assert [p["category"] for p in first] == categories
    for p in first:
        assert p["hint"], f"no fix for {p['where']}: {p['message']}"
        assert p["where"] or p["category"] == "field"


def test_a_range_error_names_its_fix():
    with pytest.raises(InvalidSpec) as info:
        prepare_run(variant(model=["flatten", {"fc": {"units": 0}}]))
    (p,) = info.value.problems
    assert (p.field, p.message, p.hint) == ("model[1].fc.units", "must be >= 1, got 0", "set units to 1 or more, e.g. 10")
    assert str(p) == "model[1].fc.units: must be >= 1, got 0 (fix: set units to 1 or more, e.g. 10)"


def test_nesterov_without_momentum_fails_validate_not_after_a_run_exists(tmp_path, store):
    path = tmp_path / "nesterov.yaml"
    path.write_text(yaml.safe_dump(variant(train={"optimizer": "nesterov", "momentum": 0})))
    result = CliRunner().invoke(cli_app, ["validate", str(path)])
    assert result.exit_code == 2
    assert "train.momentum: nesterov needs momentum > 0, got 0.0" in result.stderr
    result = CliRunner().invoke(cli_app, ["train", str(path), "--db", store.url])
    assert result.exit_code == 2 and "nesterov needs momentum > 0" in result.stderr
    assert store.list_runs() == []  # before: a run stayed `queued` for ever


def test_a_sweep_refuses_a_trial_whose_shapes_break_before_any_run(tmp_path, store):
    with pytest.raises(InvalidSpec) as info:
        sweep(BASE, ["model[1].fc.units=10,7"], store=store, out_dir=tmp_path)
    (p,) = info.value.problems
    assert (p.context, p.category, p.field) == ("units=7", "objective", "model[1].fc.units")
    assert str(p).startswith("with units=7: model[1].fc.units: the model ends with 7 values")
    assert store.list_runs() == []  # before: the trial was queued and failed


def test_predict_grid_shows_the_examples_the_run_was_tested_on(tmp_path, store):
    """With train.seed 3 and a test subset, the grid's images are the run's own test examples."""
    from layerlab.cli_runs import run_test_images
    from layerlab.train import train
    spec = variant(data={"test_size": 40}, train={"seed": 3, "examples": 128})
    results = train(spec, store=store, predictions=12)
    run = store.get_run(results.run_id)
    preds = store.events(run["id"], kinds=["prediction"])[-1]["payload"]["predictions"]
    images, labels = run_test_images(prepare_run(run["spec"]).spec, [p["index"] for p in preds])
    assert labels == [p["label"] for p in preds]  # before: loaded with seed 3, another subset
    unscaled = prepare_run(variant(data={"test_size": 40, "normalize": "none"})).load_data().test.x
    assert np.array_equal(images, unscaled[[p["index"] for p in preds]].numpy())
    result = CliRunner().invoke(cli_app, ["predict", str(run["id"]), "--grid", str(tmp_path / "g.png"),
                                          "--db", store.url])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "g.png").stat().st_size > 1000


@pytest.mark.parametrize("error,status", [
    (InvalidSpec("x"), 400), (DataUnavailable("x"), 409), (NotFound("x"), 404), (Conflict("x"), 409),
    (StoreUnavailable("x"), 503), (UnknownDataset("x"), 404), (RunNotFound("x"), 404), (RunConflict("x"), 409),
    (LayerlabError("x"), 400), (DataTooLarge("x"), 413), (ModelTooLarge("x"), 413), (PredictionFailed("x"), 503),
    (OutOfMemory("x"), 507)])
def test_the_server_maps_errors_by_type_not_by_wording(error, status, store):
    app = create_app(store, workers=0)

    def boom():
        raise error

    app.add_api_route("/api/boom", boom)
    resp = TestClient(app, base_url="http://127.0.0.1").get("/api/boom")
    assert resp.status_code == status, resp.text
    assert resp.json()["error"] == type(error).__name__ and resp.json()["detail"] == "x"
