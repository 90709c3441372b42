"""The checker's verdicts and how they read: each problem names the layer, what it got, and a fix."""
import pytest
import torch

import layerlab
from layerlab.presets import preset_names
from layerlab.shapes import check


def _check(model, dataset="fashion-mnist", **train):
    return check({"data": {"dataset": dataset}, "model": model, "train": train})


def test_fc_on_an_image_asks_for_flatten():
    result = _check(["relu", {"fc": {"units": 10}}])
    assert not result.valid
    (p,) = result.problems
    assert (p.layer, p.kind) == (1, "fc")
    assert f"{p.where}: {p.message}" == "layer 2 (fc): fc needs a flat input (features,), but receives 1×28×28"
    assert p.hint == "add flatten before layer 2"
    assert [r.status for r in result.rows] == ["ok", "error"]


def test_wrong_number_of_class_scores_names_the_fc_to_change():
    result = _check(["flatten", {"fc": {"units": 100}}, "relu"])
    (p,) = result.problems
    assert p.message == "the model ends with 100 values but fashion-mnist has 10 classes"
    assert p.hint == "set units of the fc at layer 2 to 10"
    assert p.field == "model[1].fc.units"


def test_output_not_flat():
    result = _check([{"conv2d": {"depth": 4}}])
    assert "ends with 4×26×26 values per example" in result.problems[0].message
    assert result.problems[0].hint == "add flatten and fc with 10 units at the end"


def test_empty_model():
    result = _check([])
    (p,) = result.problems
    assert p.message == "the model has no layers"
    assert p.hint == "add flatten, then fc with 10 units (or pick a preset)"
    assert _check([], dataset="toy-functions/max").problems[0].hint.startswith("add fc with 1 units")


def test_conv_field_larger_than_input_names_the_parameter():
    model = ["flatten", {"reshape": {"shape": [1, 4, 196]}}, {"conv2d": {"field": 7}}]
    result = _check(model)
    (p,) = result.problems
    assert p.layer == 2 and p.field == "model[2].conv2d.field"
    assert "output height would be (4 + 2×0 − 7) / 1 + 1 = -2, not a positive size" in p.message
    assert p.hint == "lower field to at most 4 or raise pad to at least 2"


def test_pool_window_problems():
    result = _check([{"maxpool2d": {"field": 2, "pad": 2}}])
    assert result.problems[0].field == "model[0].maxpool2d.pad"
    assert result.problems[0].hint == "lower pad to at most 1 or raise field to at least 4"
    result = _check([{"maxpool2d": {"field": 2, "stride": 2}}] * 5)
    assert result.problems[0].where == "layer 5 (maxpool2d)"


def test_reshape_sizes_must_match():
    result = _check(["flatten", {"reshape": {"shape": [1, 28, 27]}}])
    (p,) = result.problems
    assert f"{p.where}: {p.message}" == "layer 2 (reshape): reshape to [1, 28, 27] needs 756 values but receives 784 (784 values)"
    assert p.hint == "use a shape whose sizes multiply to 784, e.g. [784] or [1, 28, 28]"


def test_2d_layer_on_flat_input_proposes_reshape_or_removing_flatten():
    result = _check(["flatten", {"conv2d": {"depth": 4}}])
    (p,) = result.problems
    assert f"{p.where}: {p.message}" == "layer 2 (conv2d): conv2d needs an image (channels, height, width), but receives a flat vector of 784 values"
    assert p.hint == "add reshape with shape [1, 28, 28] before layer 2, or remove the flatten at layer 1"
    p1 = _check([{"conv1d": {}}], dataset="toy-functions/max").problems[0]
    assert p1.hint == "add reshape with shape [1, 4] before layer 1"


def test_regression_and_reconstruction_targets():
    assert _check([{"fc": {"units": 1}}], dataset="toy-functions/max").valid
    bad = _check([{"fc": {"units": 3}}], dataset="toy-functions/max")
    assert bad.problems[0].message == "the model ends with 3 values but toy-functions/max has 1 target value(s) per example"
    assert check("autoencoder").valid and check("autoencoder").task == "reconstruction"
    wrong = _check(["flatten", {"fc": {"units": 10}}], task="reconstruction", loss="mse")
    assert "reconstructs inputs of 784 values (1×28×28)" in wrong.problems[0].message
    ce = _check([{"fc": {"units": 1}}], dataset="plane", loss="cross_entropy")
    assert ce.problems[0].field == "train.loss"


def test_rows_totals_and_mult_adds():
    result = check("mnist-conv")
    assert result.valid and result.output_shape == [10]
    assert [r.output_shape for r in result.rows][:3] == [[8, 28, 28], [8, 28, 28], [8, 14, 14]]
    assert result.rows[0].params == 1 * 8 * 25 + 8
    assert result.rows[0].mult_adds == 28 * 28 * 8 * 25
    assert result.total_params == sum(r.params for r in result.rows) == 11274


@pytest.mark.parametrize("name", preset_names())
def test_every_preset_is_valid_and_its_totals_equal_torch(name):
    result = check(name)
    assert result.valid, [str(p) for p in result.problems]
    model = layerlab.build(name)
    assert result.total_params == sum(p.numel() for p in model.parameters())
    x = torch.zeros(3, *result.input_shape)
    assert list(model.eval()(x).shape[1:]) == result.output_shape


def test_warnings_do_not_invalidate():
    stacked = check("fc10-fc10")
    assert stacked.valid and "no activation between them" in stacked.warnings[0].message
    assert check("autoencoder").warnings == []  # the 2-unit bottleneck is meant
    soft = _check(["flatten", {"fc": {}}, "softmax"])
    assert soft.valid and "applies softmax twice" in soft.warnings[0].message
    floor = _check([{"maxpool2d": {"field": 2, "stride": 2}}, {"maxpool2d": {"field": 2, "stride": 2}},
                    {"maxpool2d": {"field": 2, "stride": 2}}, "flatten", {"fc": {}}])
    assert floor.valid and any("not a whole number" in w.message for w in floor.warnings)


def test_dataset_override_and_invalid_spec_data():
    cifar = check("mnist-conv", dataset="cifar10")
    assert cifar.valid and cifar.rows[0].input_shape == [3, 32, 32] and cifar.rows[6].output_shape == [1024]
    assert check("linear", dataset="toy-functions/max").problems[0].message == \
        "the model ends with 10 values but toy-functions/max has 1 target value(s) per example"
    assert check("mnist-conv", dataset="nope").problems[0].field == "data.dataset"
    assert check({"model": [{"fc": {"units": 0}}]}).problems[0].field == "model[0].fc.units"
