"""Optimisers and learning-rate schedules."""
from __future__ import annotations

import math

import pytest
import torch

from layerlab import spec as spec_module
from layerlab.data import load_dataset
from layerlab.errors import SpecError
from layerlab.spec import TrainSpec, load_spec
from layerlab.train import OPTIMIZERS, SCHEDULES, lr_at, lr_curve, make_optimizer, train


pytestmark = pytest.mark.usefixtures("one_thread")


# A learning rate that suits each optimiser on a small linear problem.
LR = {"sgd": 0.1, "momentum": 0.1, "nesterov": 0.1, "rmsprop": 0.01, "adagrad": 0.1, "adadelta": 1.0,
      "adam": 0.01, "adamw": 0.01, "adamax": 0.01}


@pytest.fixture(scope="module")
def digits():
    return load_dataset("digits")


def test_registry_matches_the_spec():
    assert tuple(OPTIMIZERS) == spec_module.OPTIMIZERS
    assert set(SCHEDULES) == set(TrainSpec.model_fields["schedule"].annotation.__args__)


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_every_optimiser_reduces_the_loss(name, digits):
    spec = load_spec({"data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 10}}],
                      "train": {"optimizer": name, "lr": LR[name], "momentum": 0.9, "epochs": 3, "batch_size": 32}})
    results = train(spec, data=digits, predictions=0)
    assert results.status == "finished"
    assert results.test_loss < 0.85 * results.step0_test_loss, results
    assert results.test_accuracy > 0.3  # chance is 0.1


def test_optimiser_hyper_parameters_reach_torch():
    params = [torch.nn.Parameter(torch.zeros(3))]
    t = TrainSpec(optimizer="rmsprop", lr=0.5, rho=0.8, momentum=0.3, epsilon=1e-4, weight_decay=0.01)
    g = make_optimizer(params, t).param_groups[0]
    assert (g["lr"], g["alpha"], g["momentum"], g["eps"], g["weight_decay"]) == (0.5, 0.8, 0.3, 1e-4, 0.01)
    t = TrainSpec(optimizer="adamax", beta1=0.8, beta2=0.99)
    assert make_optimizer(params, t).param_groups[0]["betas"] == (0.8, 0.99)
    t = TrainSpec(optimizer="adadelta", lr=1.0, rho=0.95, epsilon=1e-6)
    g = make_optimizer(params, t).param_groups[0]
    assert (g["rho"], g["eps"]) == (0.95, 1e-6)
    g = make_optimizer(params, TrainSpec()).param_groups[0]  # the Model Builder's default
    assert isinstance(make_optimizer(params, TrainSpec()), torch.optim.SGD)
    assert (g["lr"], g["momentum"], g["nesterov"]) == (0.1, 0.1, False)


def test_fused_and_plain_updates_agree():
    torch.manual_seed(0)
    w = torch.randn(20, 5)
    grads = [torch.randn(20, 5) for _ in range(5)]
    out = []
    for fused in (True, False):
        p = torch.nn.Parameter(w.clone())
        opt = make_optimizer([p], TrainSpec(optimizer="adam", lr=0.01), fused=fused)
        assert opt.defaults.get("fused") is (True if fused else None) or not fused
        for g in grads:
            p.grad = g.clone()
            opt.step()
        out.append(p.detach())
    torch.testing.assert_close(out[0], out[1])


def test_nesterov_without_momentum_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError, match="momentum"):
        make_optimizer([torch.nn.Parameter(torch.zeros(1))], TrainSpec(optimizer="nesterov", momentum=0.0))
    from layerlab.store import Store
    store = Store(tmp_path / "runs.db")
    spec = {"data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 10}}],
            "train": {"optimizer": "nesterov", "momentum": 0.0}}
    with pytest.raises(SpecError, match="nesterov needs momentum > 0") as info:
        load_spec(spec)  # the spec itself is refused, so `validate` says so too
    assert [(p.field, p.category) for p in info.value.problems] == [("train.momentum", "optimizer")]
    with pytest.raises(SpecError, match="momentum"):
        train(spec, store=store)
    assert store.list_runs() == []  # refused before a run was recorded


# ----------------------------------------------------------------------------- schedules

def test_constant_schedule():
    assert lr_curve("constant", 0.1, total_steps=5, steps_per_epoch=2) == [0.1] * 5


def test_step_schedule_drops_every_step_epochs():
    curve = lr_curve("step", 1.0, total_steps=8, steps_per_epoch=2, step_epochs=1.5, step_gamma=0.5)
    # drops after 1.5 epochs = 3 updates: updates 0-2 at 1.0, 3-5 at 0.5, 6-7 at 0.25
    assert curve == [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.25, 0.25]


def test_cosine_schedule_from_lr_to_zero():
    curve = lr_curve("cosine", 1.0, total_steps=5, steps_per_epoch=1)
    expected = [0.5 * (1 + math.cos(math.pi * s / 5)) for s in range(5)]
    assert curve == pytest.approx(expected)
    assert curve[0] == 1.0 and curve[2] == pytest.approx(0.6545084971874737)


def test_one_cycle_warms_up_then_anneals():
    curve = lr_curve("one-cycle", 1.0, total_steps=10, steps_per_epoch=5)
    assert curve[0] == pytest.approx(1 / 25)         # starts at lr / 25
    assert curve[3] == pytest.approx(1.0)            # peak after 30% of the updates
    assert curve[1] == pytest.approx(1 / 25 + (1 - 1 / 25) * 0.5 * (1 - math.cos(math.pi / 3)))
    assert all(a < b for a, b in zip(curve[:3], curve[1:4]))
    assert all(a > b for a, b in zip(curve[3:], curve[4:]))
    assert lr_at("one-cycle", 1.0, 10, total_steps=10, epoch=2.0) == pytest.approx(1 / 25e4)


def test_the_trainer_follows_the_schedule(digits):
    from layerlab.store import Store
    store = Store(":memory:")
    spec = load_spec({"data": {"dataset": "digits"}, "model": ["flatten", {"fc": {"units": 10}}],
                      "train": {"schedule": "step", "step_epochs": 1, "step_gamma": 0.1, "lr": 0.1,
                                "epochs": 2, "batch_size": 64}})
    results = train(spec, store=store, data=digits, log_every=1, predictions=0)
    lrs = {row["step"]: row["value"] for row in store.metrics(results.run_id, names=["lr"])}
    per_epoch = math.ceil(len(digits.train) / 64)
    assert lrs[1] == pytest.approx(0.1) and lrs[per_epoch] == pytest.approx(0.1)
    assert lrs[per_epoch + 1] == pytest.approx(0.01) and lrs[2 * per_epoch] == pytest.approx(0.01)
