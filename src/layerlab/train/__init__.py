"""Training: the loop, optimisers, schedules, losses, evaluation, diagnostics and checkpoints.

``train(spec, store=...)`` runs one experiment and returns its ``RunResults``; ``resume(run_id)``
continues an interrupted one. See docs/metrics.md for what every recorded metric means.
"""
from .checkpoint import CHECKPOINT_ARTIFACT, WEIGHTS_ARTIFACT, load_weights
from .evaluate import evaluate, measure_inference, predict_examples
from .losses import LOSSES, Objective, make_objective
from .optim import OPTIMIZERS, make_optimizer
from .results import RunResults
from .schedules import SCHEDULES, lr_at, lr_curve
from .trainer import resolve_device, resume, train

__all__ = ["train", "resume", "RunResults", "evaluate", "predict_examples", "measure_inference", "OPTIMIZERS",
           "make_optimizer", "SCHEDULES", "lr_at", "lr_curve", "LOSSES", "Objective", "make_objective",
           "load_weights", "resolve_device", "CHECKPOINT_ARTIFACT", "WEIGHTS_ARTIFACT"]
