"""Every study end to end in its reduced (--quick) form, with assertions on what it measured.

One store for the module: each study runs once and its numbers are checked against what the
study is meant to show and against the store it was recorded in.
"""
from __future__ import annotations

import math

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from layerlab.cli_support import LabTyper
from layerlab.errors import LayerlabError
from layerlab.store import Store
from layerlab.studies import (STUDIES, AutoencoderPcaOptions, CapacityOptions, ClassifiersOptions, InitOptions,
                              ToyFunctionsOptions, get_study, run_study)
from layerlab.studies.cli import register
from layerlab.studies.record import find_records, load_record, members


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return Store(tmp_path_factory.mktemp("studies") / "runs.db")


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    return tmp_path_factory.mktemp("figures")


def _check_record(store, result, n_runs: int) -> dict:
    record = store.get_run(result.record_id)
    assert record["status"] == "finished"
    assert record["model"] == f"study:{result.name}"
    assert find_records(store, name=result.name)[0]["id"] == result.record_id
    assert [m["run_id"] for m in members(store, result.record_id)] == result.runs
    assert len(result.runs) == n_runs
    data = load_record(store, result.record_id)
    assert set(data["figure_bytes"]) == set(result.figures)
    for path in result.figures.values():
        assert path.exists() and path.read_bytes()[:4] == b"\x89PNG"
    return data


@pytest.fixture(scope="module")
def toy(store, out):
    return run_study("toy-functions", store, quick=True, out_dir=out)


@pytest.mark.slow  # the toy-functions study trains 24 runs (about 10 s)
def test_toy_functions_linear_model_fits_the_linear_target_not_the_max(toy, store):
    f = toy.numbers["functions"]
    lin_on_linear = f["linear"]["linear"]["test_loss"]
    lin_on_max = f["max"]["linear"]["test_loss"]
    assert lin_on_linear < 0.2 * lin_on_max, (lin_on_linear, lin_on_max)
    # relative to what there is to explain, the linear target is learnt almost perfectly
    assert lin_on_linear < 0.01 * f["linear"]["target_variance"]
    # max(x) is beyond a linear model but within the convnet's reach
    assert f["max"]["convnet"]["min"] < lin_on_max
    _check_record(store, toy, 3 * (1 + 3 + 1))


@pytest.mark.slow  # the toy-functions study trains 24 runs (about 10 s)
def test_toy_functions_convnet_depends_on_its_seed(toy):
    for fn, nums in toy.numbers["functions"].items():
        losses = nums["convnet"]["test_losses"]
        assert len(losses) == 3 and all(v is not None and math.isfinite(v) for v in losses)
        assert len(set(losses)) == 3, f"{fn}: different seeds should give different results"


@pytest.mark.slow  # the toy-functions study trains 24 runs (about 10 s)
def test_toy_functions_zero_init_learns_nothing(toy, store):
    assert toy.numbers["zero_init_hidden_unchanged"] is True
    for fn, nums in toy.numbers["functions"].items():
        z = nums["convnet_zeros"]
        assert z["hidden_weights_zero"] and z["hidden_weight_max_abs"] == 0.0 and z["output_weight_max_abs"] == 0.0
        # only the output bias learnt: it predicts the mean, so the loss is about the target's variance
        assert z["test_loss"] == pytest.approx(nums["target_variance"], rel=0.1)
        # the scatter plots come from the runs' prediction snapshots in the store
        events = store.events(z["run_id"], kinds=["prediction"])
        outputs = {float(p["output"][0]) for p in events[-1]["payload"]["predictions"]}
        assert len(outputs) == 1  # one constant prediction for every input
    assert {"curves", "scatter"} <= set(toy.figures)


@pytest.mark.slow  # a quick study: several training runs
def test_classifiers_table_and_numbers(store, out):
    result = run_study("classifiers", store, quick=True, out_dir=out)
    _check_record(store, result, 6)
    runs = result.numbers["runs"]
    assert {(r["model"], r["optimizer"]) for r in runs} == {
        (m, o) for m in ("linear", "MLP", "convnet") for o in ("sgd+momentum", "adam")}
    for r in runs:
        assert r["status"] == "finished"
        assert 0.3 < r["test_accuracy"] <= 1.0, r  # well above chance (0.1) even in the reduced form
        assert r["elapsed_s"] > 0 and r["examples_per_sec"] > 0
        stored = store.get_run(r["run_id"])["results"]
        assert stored["test_accuracy"] == r["test_accuracy"]  # the numbers are the store's
    assert len(result.tables[0].rows) == 6 and "time (s)" in result.tables[0].columns


@pytest.mark.slow  # a quick study: several training runs
def test_capacity_measures_the_train_test_gap(store, out):
    result = run_study("capacity", store, quick=True, out_dir=out)
    _check_record(store, result, 8)
    runs = {r["label"]: r for r in result.numbers["runs"]}
    assert len(result.numbers["depth_gap"]) == 5
    for r in runs.values():
        assert r["status"] == "finished"
        assert 0 <= r["train_accuracy"] <= 1 and 0 <= r["test_accuracy"] <= 1
        assert r["gap"] == pytest.approx(r["train_accuracy"] - r["test_accuracy"])
    # 500 training examples, 8 epochs: the deeper models fit them better than they generalise
    assert max(result.numbers["depth_gap"]) > 0.02
    # a 10-unit bottleneck first layer loses to a 100-unit one
    fc10 = runs["first layer fc10"]
    fc100 = next(r for r in runs.values() if r["hidden"] == [100])
    assert fc10["params"] < fc100["params"]


@pytest.mark.slow  # a quick study: several training runs
def test_autoencoder_pca_numbers_are_measured(store, out):
    result = run_study("autoencoder-pca", store, quick=True, out_dir=out)
    _check_record(store, result, 1)
    n = result.numbers
    for method in ("autoencoder", "pca"):
        assert 0.0 <= n[method]["knn_accuracy"] <= 1.0
        assert math.isfinite(n[method]["reconstruction_mse"]) and 0 < n[method]["reconstruction_mse"] < 1
        assert n[method]["knn_accuracy"] > 2 * n["chance"]  # 2 numbers per image keep much of the class
    assert n["autoencoder"]["reconstruction_mse"] == pytest.approx(n["autoencoder"]["test_loss"], rel=1e-3)
    assert n["bottleneck"] == 2
    assert {"codes", "separability", "reconstructions"} <= set(result.figures)


def test_autoencoder_pca_knn_accuracy_is_a_real_measure():
    import numpy as np
    from layerlab.studies.autoencoder_pca import knn_accuracy
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 100)
    separated = np.stack([y * 10.0, y * 10.0], 1) + rng.normal(size=(300, 2))
    mixed = rng.normal(size=(300, 2))
    assert knn_accuracy(separated, y, separated, y) == 1.0
    assert knn_accuracy(mixed[:150], y[:150], mixed[150:], y[150:]) < 0.6


@pytest.mark.slow  # a quick study: several training runs
def test_init_zero_init_leaves_hidden_weights_unchanged(store, out):
    result = run_study("init", store, quick=True, out_dir=out)
    _check_record(store, result, 4)
    runs = {r["init"]: r for r in result.numbers["runs"]}
    assert set(runs) == {"zeros", "normal", "xavier", "he"}
    assert result.numbers["zero_init_hidden_unchanged"] is True
    assert runs["zeros"]["hidden_weights_zero"] and not runs["he"]["hidden_weights_zero"]
    # with zeros nothing reaches the hidden layers; He and Xavier give every layer a gradient
    assert runs["zeros"]["grad_norm_first"]["fc1"] == 0.0 and runs["zeros"]["grad_norm_first"]["fc2"] == 0.0
    for init in ("xavier", "he"):
        assert all(v > 0 for v in runs[init]["grad_norm_first"].values())
    assert runs["zeros"]["test_accuracy"] < 0.2  # chance level: it predicts one class
    assert runs["he"]["test_accuracy"] > runs["zeros"]["test_accuracy"] + 0.2
    # the per-step gradient norms are stored on the study's record run
    steps = store.series(result.record_id, "grad_norm/he/fc1")
    assert len(steps) == result.numbers["steps"]


def test_study_options_are_typed_with_the_old_defaults(tmp_path):
    # the same numbers as the dicts they replace: full and reduced (--quick) forms
    assert ClassifiersOptions().model_dump() == {"dataset": "fashion-mnist", "epochs": 3, "train_size": None,
                                                 "test_size": None, "batch_size": 64}
    assert ClassifiersOptions.quick().model_dump() == {"dataset": "fashion-mnist", "epochs": 1, "train_size": 2000,
                                                       "test_size": 500, "batch_size": 64}
    assert CapacityOptions.quick().model_dump() == {"dataset": "fashion-mnist", "train_size": 500, "test_size": 500,
                                                    "epochs": 8, "width": 100}
    assert AutoencoderPcaOptions().model_dump() == {"dataset": "fashion-mnist", "train_size": None, "test_size": None,
                                                    "epochs": 5, "k": 5, "show": 10}
    assert InitOptions.quick().model_dump() == {"dataset": "fashion-mnist", "preset": "mnist-fc", "train_size": 2000,
                                                "test_size": 500, "epochs": 1, "steps": 30}
    assert ToyFunctionsOptions().model_dump() == {"seeds": 5, "epochs": 50, "n_train": 1000, "n_test": 200}
    assert ClassifiersOptions.quick(dataset="mnist").dataset == "mnist"
    assert {s.name: s.options for s in STUDIES.values()}["init"] is InitOptions
    with pytest.raises(ValidationError):
        ClassifiersOptions(epochs=0)
    with pytest.raises(ValidationError):
        InitOptions(stpes=10)
    with pytest.raises(LayerlabError, match="takes CapacityOptions, not InitOptions"):
        get_study("capacity").load().run(Store(tmp_path / "runs.db"), InitOptions())


@pytest.mark.parametrize("opt,field,fix", [("epochs=0", "opt.epochs", "set epochs to more than 0"),
                                           ("bogus=1", "opt.bogus", "remove 'bogus' or use one of: dataset"),
                                           ("train_size=2.5", "opt.train_size", "write train_size as a whole number")])
def test_cli_bad_study_option_exits_2_before_any_run(tmp_path, opt, field, fix):
    from layerlab.cli import app
    db = str(tmp_path / "runs.db")
    result = CliRunner().invoke(app, ["study", "classifiers", "--opt", opt, "--db", db])
    assert result.exit_code == 2, result.output
    assert field in result.stderr and f"fix: {fix}" in result.stderr, result.stderr
    assert Store(db).list_runs() == []  # no record, no member


def test_unknown_study_is_a_clear_error():
    with pytest.raises(LayerlabError, match="known studies"):
        get_study("toy-function")
    assert set(STUDIES) == {"toy-functions", "classifiers", "capacity", "autoencoder-pca", "init"}


def test_cli_study_quick_and_bad_option(tmp_path):
    app = LabTyper(help="test app")

    @app.command()
    def version() -> None:
        """unused"""

    register(app)
    db = str(tmp_path / "runs.db")
    runner = CliRunner()
    listed = runner.invoke(app, ["study"])
    assert listed.exit_code == 0 and "autoencoder-pca" in listed.output
    bad = runner.invoke(app, ["study", "init", "--quick", "--opt", "nope=1", "--db", db])
    assert bad.exit_code == 2 and "nope" in bad.output
    ok = runner.invoke(app, ["study", "init", "--quick", "--opt", "steps=12", "--opt", "train_size=600",
                             "--db", db, "--out", str(tmp_path), "--report", str(tmp_path / "init.html")])
    assert ok.exit_code == 0, ok.output
    assert "Result per initialiser" in ok.output
    assert (tmp_path / "init.html").exists()
    record = find_records(Store(db), name="init")[0]
    assert record["results"]["numbers"]["steps"] == 12
