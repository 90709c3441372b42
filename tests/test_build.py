"""Builder and initialisers: named modules, reproducible weights, every initialiser's statistics."""
import math

import pytest
import torch

import layerlab
from layerlab.errors import SpecError
from layerlab.init import INITIALISERS


def _spec(init="default", layer_init=None):
    fc = {"units": 256}
    if layer_init:
        fc["init"] = layer_init
    return {"data": {"dataset": "fashion-mnist"}, "model": ["flatten", {"fc": fc}, "relu", {"fc": {"units": 10}}],
            "train": {"init": init, "seed": 3}}


def test_named_submodules_and_readable_print():
    model = layerlab.build("keras-mnist-cnn")
    names = [n for n, _ in model.named_children()]
    assert names[:6] == ["conv2d1", "relu1", "conv2d2", "relu2", "maxpool2d1", "dropout1"]
    assert "(fc2): Linear(in_features=128, out_features=10, bias=True)" in str(model)


def test_build_refuses_invalid_specs():
    with pytest.raises(SpecError, match="add flatten before layer 1"):
        layerlab.build({"model": [{"fc": {"units": 10}}]})


def test_same_seed_same_weights_and_global_rng_untouched():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = layerlab.build(_spec())
    after = torch.rand(1)
    b = layerlab.build(_spec())
    c = layerlab.build(_spec(), seed=4)
    assert torch.equal(a.fc1.weight, b.fc1.weight)
    assert not torch.equal(a.fc1.weight, c.fc1.weight)
    assert torch.equal(before, after)


def _w(init):
    model = layerlab.build(_spec(init))
    return model.fc1.weight.detach(), model.fc1.bias.detach()


def test_zeros_constant_and_bias_convention():
    w, b = _w("zeros")
    assert w.abs().sum() == 0 and b.abs().sum() == 0
    w, b = _w({"constant": {"value": 0.25}})
    assert torch.all(w == 0.25) and torch.all(b == 0)
    w, b = _w("default")
    assert b.abs().sum() > 0  # PyTorch's own bias init is kept


@pytest.mark.parametrize("init, std", [
    ({"normal": {"std": 0.02}}, 0.02),
    ({"uniform": {"low": -0.1, "high": 0.1}}, 0.1 / math.sqrt(3)),
    ("xavier_uniform", math.sqrt(2 / (784 + 256))),
    ("xavier_normal", math.sqrt(2 / (784 + 256))),
    ("he_uniform", math.sqrt(2 / 784)),
    ("he_normal", math.sqrt(2 / 784)),
    ("variance_scaling", math.sqrt(1 / 784)),
    ({"variance_scaling": {"scale": 2.0, "mode": "fan_out", "distribution": "uniform"}}, math.sqrt(2 / 256)),
    ("default", math.sqrt(1 / (3 * 784))),
])
def test_initialiser_statistics(init, std):
    w, _ = _w(init)
    assert w.std().item() == pytest.approx(std, rel=0.05)
    assert abs(w.mean().item()) < std * 0.05


def test_per_layer_init_overrides_the_model_one():
    model = layerlab.build(_spec("zeros", "he_normal"))
    assert model.fc1.weight.std().item() == pytest.approx(math.sqrt(2 / 784), rel=0.05)
    assert model.fc2.weight.abs().sum() == 0


def test_every_initialiser_is_documented_and_buildable():
    for name in INITIALISERS:
        assert INITIALISERS[name].doc
        layerlab.build(_spec(name))
