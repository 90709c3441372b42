"""Optimisers, resolved by name from ``train.optimizer``: one registry entry each.

Each entry maps the spec's hyper-parameters (``TrainSpec``: lr, momentum, rho, beta1, beta2,
epsilon, weight_decay) onto a ``torch.optim`` class. The Model Builder's default is
``momentum`` (SGD with momentum 0.1, lr 0.1, batch 64).

Where torch has a fused implementation (one kernel for all parameters: SGD, Adam, AdamW,
Adagrad) it is used: the same update, computed faster; ``fused=False`` asks for the plain one.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..errors import Problem, SpecError
from ..spec import optimizer_problems

__all__ = ["Optimizer", "OPTIMIZERS", "make_optimizer"]


@dataclass(frozen=True)
class Optimizer:
    name: str
    doc: str
    cls: type[torch.optim.Optimizer]
    kwargs: Callable[[object], dict]   # TrainSpec -> keyword arguments of ``cls``
    fusable: bool = False


def _sgd(t, *, momentum: bool = True, nesterov: bool = False) -> dict:
    # nesterov's momentum > 0 is checked with the spec (spec.OPTIMIZER_CONSTRAINTS), before any run.
    kw = {"lr": t.lr, "weight_decay": t.weight_decay}
    if momentum:
        kw.update(momentum=t.momentum, nesterov=nesterov)
    return kw


def _adam(t) -> dict:
    return {"lr": t.lr, "betas": (t.beta1, t.beta2), "eps": t.epsilon, "weight_decay": t.weight_decay}


OPTIMIZERS: dict[str, Optimizer] = {o.name: o for o in (
    Optimizer("sgd", "Plain stochastic gradient descent: w -= lr * g.", torch.optim.SGD,
              lambda t: _sgd(t, momentum=False), True),
    Optimizer("momentum", "SGD with momentum: a running sum of past gradients (the Model Builder's default).",
              torch.optim.SGD, _sgd, True),
    Optimizer("nesterov", "SGD with Nesterov momentum: the gradient is taken after the momentum step.",
              torch.optim.SGD, lambda t: _sgd(t, nesterov=True), True),
    Optimizer("rmsprop", "RMSprop: divide by a running RMS of the gradients (rho is torch's alpha).",
              torch.optim.RMSprop, lambda t: {"lr": t.lr, "alpha": t.rho, "eps": t.epsilon, "momentum": t.momentum,
                                              "weight_decay": t.weight_decay}),
    Optimizer("adagrad", "Adagrad: divide by the root of the sum of all past squared gradients.",
              torch.optim.Adagrad, lambda t: {"lr": t.lr, "eps": t.epsilon, "weight_decay": t.weight_decay}, True),
    Optimizer("adadelta", "Adadelta: Adagrad with decaying averages (rho) and unit-corrected steps.",
              torch.optim.Adadelta, lambda t: {"lr": t.lr, "rho": t.rho, "eps": t.epsilon,
                                               "weight_decay": t.weight_decay}),
    Optimizer("adam", "Adam: momentum (beta1) divided by a running RMS (beta2), bias-corrected.",
              torch.optim.Adam, _adam, True),
    Optimizer("adamw", "AdamW: Adam with weight decay applied to the weights directly (decoupled).",
              torch.optim.AdamW, _adam, True),
    Optimizer("adamax", "Adamax: Adam with the infinity norm in place of the RMS.", torch.optim.Adamax, _adam),
)}


def make_optimizer(params, train, *, fused: bool | None = None) -> torch.optim.Optimizer:
    """The optimiser ``train.optimizer`` names, configured from the ``TrainSpec``.

    ``fused``: None uses the fused kernel where torch has one for these parameters.
    """
    entry = OPTIMIZERS.get(train.optimizer)
    if entry is None:
        raise SpecError(Problem(f"unknown optimizer {train.optimizer!r}", f"use one of: {', '.join(OPTIMIZERS)}",
                                field="train.optimizer"))
    constraints = optimizer_problems(train)  # parse_spec checks these too; a hand-made TrainSpec may not be
    if constraints:
        raise SpecError(constraints)
    params = list(params)
    kwargs = entry.kwargs(train)
    if entry.fusable and fused is not False and params:
        try:
            return entry.cls(params, fused=True, **kwargs)
        except (RuntimeError, ValueError, TypeError):
            if fused:
                raise
    return entry.cls(params, **kwargs)
