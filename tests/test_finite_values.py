"""Non-finite and absurd values are refused with the spec (before: each passed validation and started a run)."""
from __future__ import annotations

import copy

import pytest

from layerlab.errors import InvalidSpec
from layerlab.prepare import prepare_run

INF, NAN = float("inf"), float("nan")
BASE = {"data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 10}}], "train": {"examples": 64}}


def variant(section: str, value) -> dict:
    spec = copy.deepcopy(BASE)
    spec[section] = {**spec[section], **value} if isinstance(value, dict) else value
    return spec


CASES = [
    ("train", {"lr": INF}, "train.lr", "must be a finite number"),
    ("train", {"lr": NAN}, "train.lr", "must be a finite number"),
    ("train", {"weight_decay": INF}, "train.weight_decay", "must be a finite number"),
    ("train", {"optimizer": "adam", "epsilon": INF}, "train.epsilon", "must be a finite number"),
    ("train", {"clip_grad": INF}, "train.clip_grad", "must be a finite number"),
    ("train", {"schedule": "step", "step_epochs": INF}, "train.step_epochs", "must be a finite number"),
    ("train", {"examples": 10**18}, "train.examples", "must be <= 10000000000"),
    ("train", {"lr": 1e300}, "train.lr", "must be <= 1e+38"),
    ("train", {"init": {"normal": {"std": INF}}}, "train.init.normal.std", "must be a finite number"),
    ("model", ["flatten", {"leaky_relu": {"slope": INF}}, {"fc": {"units": 10}}], "model[1].leaky_relu.slope",
     "must be a finite number"),
    ("model", ["flatten", {"fc": {"units": 10, "init": {"uniform": {"low": -INF}}}}], "model[1].fc.init.uniform.low",
     "must be a finite number"),
    ("model", ["flatten", {"fc": {"units": 10**12}}], "model[1].fc.units", "must be <= 10000000"),
    ("data", {"test_size": 10**9}, "data.test_size", "must be <= 1000000"),
    ("data", {"dataset": "circle", "options": {"n_train": 10**8}}, "data.options", "must be an integer in the range"),
]


@pytest.mark.parametrize("section,value,field,message", CASES, ids=[c[2] for c in CASES])
def test_the_value_is_refused_with_its_path_and_a_fix(section, value, field, message):
    with pytest.raises(InvalidSpec) as info:
        prepare_run(variant(section, value))
    problems = {p.field: p for p in info.value.problems}
    assert field in problems, [str(p) for p in info.value.problems]
    assert message in problems[field].message and problems[field].hint
