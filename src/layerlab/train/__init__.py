"""Training: the loop, optimisers, schedules, losses, evaluation, diagnostics and checkpoints.

``train(spec, store=...)`` runs one experiment and returns its ``RunResults``; ``resume(run_id)``
continues an interrupted one. See docs/metrics.md for what every recorded metric means.

Names load on first use (PEP 562), so ``layerlab.train.results`` — read by the CLI, the API
and the report — does not import torch with the trainer.
"""
from __future__ import annotations

import importlib

_WHERE = {
    "CHECKPOINT_ARTIFACT": "checkpoint", "WEIGHTS_ARTIFACT": "checkpoint", "load_weights": "checkpoint",
    "evaluate": "evaluation", "measure_inference": "evaluation", "predict_examples": "evaluation",
    "LOSSES": "losses", "Objective": "losses", "make_objective": "losses",
    "OPTIMIZERS": "optim", "make_optimizer": "optim",
    "RunResults": "results",
    "SCHEDULES": "schedules", "lr_at": "schedules", "lr_curve": "schedules",
    "resolve_device": "trainer", "resume": "trainer", "train": "trainer",
}

__all__ = ["train", "resume", "RunResults", "evaluate", "predict_examples", "measure_inference", "OPTIMIZERS",
           "make_optimizer", "SCHEDULES", "lr_at", "lr_curve", "LOSSES", "Objective", "make_objective",
           "load_weights", "resolve_device", "CHECKPOINT_ARTIFACT", "WEIGHTS_ARTIFACT"]


def __getattr__(name: str):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_WHERE[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
