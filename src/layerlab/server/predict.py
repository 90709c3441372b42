"""Predictions of a model's random initial weights, so the builder shows them before training.

The model is built exactly as the trainer builds it (the spec's seed and initialisers), and
the same fixed test examples are forwarded, so these are the predictions a run records at
step 0.
"""
from __future__ import annotations

from ..builder import build
from ..prepare import PreparedRun
from .datacache import PREDICTION_COUNT, DataCache

__all__ = ["initial_predictions"]


def initial_predictions(prepared: PreparedRun, cache: DataCache) -> dict:
    """``{task, classes, predictions: [{index, label, top: [[class, prob] x3], correct}, ...]}``."""
    from ..train.evaluate import predict_examples
    from ..train.losses import make_objective

    spec = prepared.spec
    data = cache.for_spec(spec)
    info = data.info
    objective = make_objective(prepared.task, prepared.loss, num_classes=info.num_classes,
                               last_layer=spec.model[-1].kind if spec.model else None)
    model = build(spec, result=prepared.check)
    indices = list(range(min(PREDICTION_COUNT, len(data.test))))
    items = predict_examples(model, data, indices, objective=objective)
    out = {"step": 0, "examples": 0, "task": objective.task, "predictions": items}
    if objective.classifies:
        out["classes"] = list(info.class_names) or [str(i) for i in range(info.num_classes)]
    return out
