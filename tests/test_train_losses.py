"""Losses, objectives, and training with each of them."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from layerlab.data import load_dataset
from layerlab.spec import load_spec
from layerlab.train import LOSSES, make_objective, train


pytestmark = pytest.mark.usefixtures("one_thread")


def test_cross_entropy_is_softmax_cross_entropy_on_logits():
    out, y = torch.randn(5, 3), torch.tensor([0, 2, 1, 1, 0])
    obj = make_objective("classification", "cross_entropy", num_classes=3, last_layer="fc")
    manual = -torch.log_softmax(out, 1)[torch.arange(5), y].mean()
    torch.testing.assert_close(obj(out, y), manual)
    torch.testing.assert_close(obj.per_example(out, y).mean(), manual)
    torch.testing.assert_close(obj.probabilities(out), torch.softmax(out, 1))


def test_mse_for_regression_reconstruction_and_classes():
    out, y = torch.randn(4, 3), torch.randn(4, 3)
    reg = make_objective("regression", "mse", num_classes=None, last_layer=None)
    torch.testing.assert_close(reg(out, y), ((out - y) ** 2).mean())
    x = torch.randn(4, 1, 2, 2)  # reconstruction: the target is the prepared input, flattened
    rec = make_objective("reconstruction", "mse", num_classes=None, last_layer="sigmoid")
    assert rec.target(x, torch.zeros(4)) is x
    torch.testing.assert_close(rec(torch.zeros(4, 4), x), (x.reshape(4, -1) ** 2).mean())
    cls = make_objective("classification", "mse", num_classes=3, last_layer="fc")
    labels = torch.tensor([0, 1, 2, 0])
    torch.testing.assert_close(cls(out, labels), ((out - F.one_hot(labels, 3).float()) ** 2).mean())


def test_bce_uses_logits_unless_the_model_ends_with_sigmoid():
    out, labels = torch.randn(4, 3) * 5, torch.tensor([0, 1, 2, 0])
    onehot = F.one_hot(labels, 3).float()
    logits = make_objective("classification", "bce", num_classes=3, last_layer="fc")
    torch.testing.assert_close(logits(out, labels), F.binary_cross_entropy_with_logits(out, onehot))
    torch.testing.assert_close(logits.probabilities(out), torch.sigmoid(out))
    probs = torch.sigmoid(out)
    sig = make_objective("classification", "bce", num_classes=3, last_layer="sigmoid")
    torch.testing.assert_close(sig(probs, labels), F.binary_cross_entropy(probs, onehot))
    torch.testing.assert_close(sig.probabilities(probs), probs)
    # a saturated sigmoid (exactly 0 or 1) gives a large but finite loss
    saturated = torch.tensor([[0.0, 1.0, 1.0]])
    assert torch.isfinite(sig(saturated, torch.tensor([0])))
    # reconstruction targets are clamped to [0, 1]
    rec = make_objective("reconstruction", "bce", num_classes=None, last_layer="sigmoid")
    x = torch.tensor([[-1.0, 0.5, 2.0]])
    torch.testing.assert_close(rec(torch.full((1, 3), 0.5), x),
                               F.binary_cross_entropy(torch.full((1, 3), 0.5), torch.tensor([[0.0, 0.5, 1.0]])))


def test_registry_has_the_spec_losses():
    assert set(LOSSES) == {"cross_entropy", "mse", "bce"}


@pytest.fixture(scope="module")
def digits01():
    return load_dataset("digits", normalize="0..1")


CASES = [
    ("digits-cross-entropy", {"dataset": "digits"}, ["flatten", {"fc": {"units": 10}}],
     {"loss": "cross_entropy", "optimizer": "adam", "lr": 0.01}),
    ("digits-bce", {"dataset": "digits"}, ["flatten", {"fc": {"units": 10}}],
     {"loss": "bce", "optimizer": "adam", "lr": 0.01}),
    ("digits-mse-classes", {"dataset": "digits"}, ["flatten", {"fc": {"units": 10}}],
     {"loss": "mse", "optimizer": "adam", "lr": 0.01}),
    ("digits-reconstruction-mse", {"dataset": "digits", "normalize": "0..1"},
     ["flatten", {"fc": {"units": 16}}, "relu", {"fc": {"units": 64}}, "sigmoid"],
     {"task": "reconstruction", "loss": "mse", "optimizer": "adam", "lr": 0.01}),
    ("digits-reconstruction-bce", {"dataset": "digits", "normalize": "0..1"},
     ["flatten", {"fc": {"units": 16}}, "relu", {"fc": {"units": 64}}, "sigmoid"],
     {"task": "reconstruction", "loss": "bce", "optimizer": "adam", "lr": 0.01}),
    ("toy-regression-mse", {"dataset": "toy-functions/linear", "normalize": "none"},
     [{"fc": {"units": 1}}], {"optimizer": "adam", "lr": 0.05}),
]


@pytest.mark.parametrize("name,data,model,extra", CASES, ids=[c[0] for c in CASES])
def test_training_with_each_loss_reduces_it(name, data, model, extra):
    spec = load_spec({"data": data, "model": model, "train": {"epochs": 3, "batch_size": 32, **extra}})
    results = train(spec, predictions=3)
    assert results.status == "finished"
    assert results.loss == extra.get("loss", "mse")
    assert results.test_loss < 0.8 * results.step0_test_loss, (name, results.test_loss,
                                                                      results.step0_test_loss)
    if results.task == "classification":
        assert results.test_accuracy > 0.5
        assert len(results.confusion["matrix"]) == 10
    else:
        assert results.test_accuracy is None and results.confusion is None
