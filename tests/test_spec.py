"""The spec contract: formats, layer forms, presets, overrides, and field-path errors."""
import json

import pytest

import layerlab
from layerlab.errors import SpecError
from layerlab.spec import apply_overrides, load_spec, parse_spec

CONTRACT = """
name: fc-relu-fc
data:  {dataset: fashion-mnist, normalize: "-1..1"}
model:
  - flatten
  - fc: {units: 100}
  - relu
  - fc: {units: 10}
train: {optimizer: momentum, lr: 0.1, momentum: 0.1, batch_size: 64, epochs: 1, seed: 0, init: default}
"""


def test_yaml_json_and_dict_give_the_same_spec(tmp_path):
    import yaml
    data = yaml.safe_load(CONTRACT)
    (tmp_path / "s.yaml").write_text(CONTRACT)
    (tmp_path / "s.json").write_text(json.dumps(data))
    specs = [load_spec(tmp_path / "s.yaml"), load_spec(str(tmp_path / "s.json")), layerlab.load_spec(data)]
    assert all(s.to_dict() == specs[0].to_dict() for s in specs)
    spec = specs[0]
    assert [l.kind for l in spec.model] == ["flatten", "fc", "relu", "fc"]
    assert spec.model[1].params == {"units": 100, "bias": True}
    assert spec.train.optimizer == "momentum" and spec.train.batch_size == 64
    assert spec.data.normalize == "-1..1"


def test_canonical_form_round_trips():
    spec = load_spec("keras-mnist-cnn")
    again, problems = parse_spec(spec.to_dict())
    assert problems == []
    assert again.to_dict() == spec.to_dict()


def test_layer_forms_and_alias():
    spec = load_spec({"model": ["flatten", {"dense": {"units": 5}}, {"kind": "relu"},
                                {"kind": "fc", "params": {"units": 10}}, {"dropout": None}]})
    assert [l.kind for l in spec.model] == ["flatten", "fc", "relu", "fc", "dropout"]
    assert spec.model[1].params["units"] == 5
    assert spec.model[4].params == {"rate": 0.5}


def test_catalogue_defaults_follow_the_model_builder():
    spec = load_spec({"model": ["fc", "conv2d", "maxpool2d"]})
    assert spec.model[0].params["units"] == 10
    assert {k: spec.model[1].params[k] for k in ("field", "stride", "pad", "depth")} == \
        {"field": 3, "stride": 1, "pad": 0, "depth": 1}
    assert spec.model[2].params == {"field": 3, "stride": 1, "pad": 0}


@pytest.mark.parametrize("data, field, words", [
    ({"model": ["flatten", "relu", "relu", {"conv2d": {"stride": 0}}]}, "model[3].conv2d.stride",
     "must be >= 1, got 0"),
    ({"model": [{"fc": {"units": "ten"}}]}, "model[0].fc.units", "must be an integer, got 'ten'"),
    ({"model": [{"fc": {"units": 2.5}}]}, "model[0].fc.units", "got 2.5"),
    ({"model": [{"dropout": {"rate": 1.0}}]}, "model[0].dropout.rate", "must be < 1.0, got 1.0"),
    ({"model": [{"fc": {"units": 10, "unit": 3}}]}, "model[0].fc.unit", "unknown field; known fields: units"),
    ({"train": {"lr": -1}}, "train.lr", "must be > 0.0, got -1"),
    ({"train": {"optimizer": "adamm"}}, "train.optimizer", "must be one of"),
    ({"train": {"batch_size": 0}}, "train.batch_size", "must be >= 1, got 0"),
    ({"train": {"colour": "red"}}, "train.colour", "unknown field"),
    ({"data": {"dataset": "mnits"}}, "data.dataset", "unknown data set 'mnits'"),
    ({"data": {"normalize": "0..2"}}, "data.normalize", "got '0..2'"),
    ({"train": {"init": "glorot"}}, "train.init", "unknown initialiser 'glorot'"),
    ({"train": {"init": {"normal": {"std": -1}}}}, "train.init.normal.std", "must be > 0.0, got -1"),
    ({"model": [{"fc": {"init": "nope"}}]}, "model[0].fc.init", "unknown initialiser"),
    ({"modle": []}, "modle", "unknown field"),
    ({"model": ["flatten", {"fc": {"init": 5}}]}, "model[1].fc.init", "must be a string or a mapping, got 5"),
    ({"train": {"examples": "many"}}, "train.examples", "must be an integer, got 'many'"),
    ({"model": "preset/mnist-cnv"}, "model", "unknown model preset"),
])
def test_bad_fields_are_named_with_their_path(data, field, words):
    spec, problems = parse_spec(data)
    assert spec is None
    matching = [p for p in problems if p.field == field]
    assert matching, [str(p) for p in problems]
    assert words in matching[0].message


def test_unknown_kind_suggests_the_close_one():
    _, problems = parse_spec({"model": ["flatten", "fcc"]})
    assert problems[0].layer == 1 and problems[0].field == "model[1]"
    assert "did you mean 'fc'" in problems[0].hint


def test_a_value_no_union_member_accepts_is_one_problem_at_the_written_path():
    _, problems = parse_spec({"train": {"init": 5, "examples": "many"}})
    assert sorted(p.field for p in problems) == ["train.examples", "train.init"]


def test_every_problem_is_reported_not_just_the_first():
    _, problems = parse_spec({"model": [{"fc": {"units": 0}}, "bogus"], "train": {"lr": 0}})
    assert {p.field for p in problems} == {"model[0].fc.units", "model[1]", "train.lr"}


def test_spec_error_message_lists_problems():
    with pytest.raises(SpecError) as info:
        load_spec({"model": [{"conv2d": {"stride": 0}}]})
    assert str(info.value) == "model[0].conv2d.stride: must be >= 1, got 0 (fix: set stride to 1 or more, e.g. 1)"


def test_preset_reference_in_model():
    spec = load_spec({"name": "x", "model": "preset/mnist-conv", "data": {"dataset": "mnist"}})
    assert spec.preset == "mnist-conv" and len(spec.model) == 8
    assert spec.model[0].params["depth"] == 8 and spec.data.dataset == "mnist"


def test_overrides_use_dotted_paths_and_yaml_values():
    data = apply_overrides({"model": "preset/fc100-relu-fc10"},
                           ["train.lr=1e-3", "model[1].fc.units=50", "train.optimizer=adam", "data.dataset=digits"])
    spec = load_spec(data)
    assert spec.train.lr == 0.001 and spec.train.optimizer == "adam"
    assert spec.model[1].params["units"] == 50 and spec.data.dataset == "digits"
    with pytest.raises(SpecError, match="key=value"):
        apply_overrides({}, ["train.lr"])
    with pytest.raises(SpecError, match="no item 9"):
        apply_overrides({"model": ["flatten"]}, ["model[9].fc.units=3"])


def test_bad_yaml_names_file_and_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("model:\n  - fc: {units: 10\n  - relu\n")
    with pytest.raises(SpecError, match=r"broken.yaml: invalid YAML at line \d+"):
        load_spec(path)


def test_neither_file_nor_preset():
    with pytest.raises(SpecError, match="neither a spec file nor a preset"):
        load_spec("no-such-thing.yaml")
