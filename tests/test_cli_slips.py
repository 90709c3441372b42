"""The CLI's small truths: table text shown as written, the checker's warnings at `train`, run names that
say what the model is, and test numbers labelled with what they were measured on."""
from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from layerlab.cli import app
from layerlab.spec import load_spec
from layerlab.textfmt import label_test_set


@pytest.fixture
def db(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    monkeypatch.setenv("LAYERLAB_DB", url)
    return url


def _cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def test_inits_prints_the_range_text_rich_would_read_as_markup():
    out = _cli("inits").stdout
    assert "Weights uniform in [low, high]." in out


def test_train_prints_the_checkers_warnings_as_validate_does(db):
    warning = "layer 2 (fc) and layer 3 (fc) have no activation between them"
    assert warning in " ".join(_cli("validate", "fc10-fc10").stderr.split())
    result = _cli("train", "fc10-fc10", "--dataset", "digits", "--examples", "64", "--json")
    assert result.exit_code == 0
    assert warning in " ".join(result.stderr.split())


def test_a_preset_whose_model_is_replaced_is_not_named_after_it(db):
    assert load_spec("mnist-fc").name == "mnist-fc"
    assert load_spec("mnist-fc", overrides=["train.lr=0.5"]).name == "mnist-fc"  # still the preset's model
    replaced = load_spec("mnist-fc", overrides=["model=[flatten, {fc: {units: 10}}]"])
    assert replaced.name == replaced.model_label() == "flatten-fc10"
    edited = load_spec("mnist-fc", overrides=["model[1].fc.units=64"])
    assert edited.name == "flatten-fc64-relu-fc32-relu-fc10"
    assert load_spec("mnist-fc", overrides=["model=[flatten, {fc: {units: 10}}]", "name=mine"]).name == "mine"
    result = _cli("train", "mnist-fc", "--dataset", "digits", "--examples", "64", "--set",
                  "model=[flatten, {fc: {units: 10}}]", "--json")
    assert result.exit_code == 0, result.output
    run = json.loads(_cli("runs", "--json").stdout)[0]
    assert run["name"] == "flatten-fc10" and run["model"] == "flatten-fc10"


def test_test_numbers_say_when_they_are_on_a_subset_of_the_test_split(db):
    assert label_test_set(10_000, 10_000) == "full test set"
    assert label_test_set(64, 10_000) == "64 of 10,000 test examples"
    assert label_test_set(None, None) == ""  # runs stored before the sizes were kept
    sub = _cli("train", "linear", "--dataset", "digits", "--examples", "64", "--set", "data.test_size=64")
    text = sub.stdout + sub.stderr
    assert "test accuracy (64 of 359 test examples)" in text and "full test set" not in text
    assert "(64 of 359 test examples)" in sub.stderr  # the eval lines too
    whole = _cli("train", "linear", "--dataset", "digits", "--examples", "64", "--json")
    r = json.loads(whole.stdout)
    assert r["test_examples"] == r["test_split_size"] == 359
    assert "(full test set)" in whole.stderr
