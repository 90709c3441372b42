"""A run's stored model: its spec, built by the builder, with the weights the store holds for it.

Which weights: the final weights (``weights.safetensors``) of a run that ended, the latest
checkpoint of one that is queued or running, or of one that ended before writing final weights
(the same choice as the activations view). A run with neither answers ``Conflict`` (409).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import Conflict, DataError

__all__ = ["StoredModel", "stored_model", "ACTIVE_STATUSES"]

ACTIVE_STATUSES = ("queued", "running")  # a run whose newest weights are its checkpoint


@dataclass
class StoredModel:
    """A run's spec, checker verdict, and model (eval mode, CPU) with its stored weights."""

    run: dict
    spec: Any               # layerlab.spec.Spec
    check: Any              # layerlab.shapes.CheckResult
    model: Any              # torch.nn.Sequential, named fc1, relu1, ... (builder.layer_names)
    source: dict            # {"source": "final" | "checkpoint", "step", "examples"}


def _artifact(store, run: dict) -> str:
    from ..train.checkpoint import CHECKPOINT_ARTIFACT, WEIGHTS_ARTIFACT
    have = {a["name"] for a in store.list_artifacts(run["id"])}
    order = (CHECKPOINT_ARTIFACT, WEIGHTS_ARTIFACT) if run["status"] in ACTIVE_STATUSES else \
        (WEIGHTS_ARTIFACT, CHECKPOINT_ARTIFACT)
    for name in order:
        if name in have:
            return name
    raise Conflict(f"run {run['id']} is {run['status']} and has no weights stored yet (its first checkpoint "
                   "is written when training starts); try again once it has trained")


def stored_model(store, run_id: int) -> StoredModel:
    """Run ``run_id``'s model with its stored weights; ``RunNotFound`` (404), ``Conflict`` (409), ``DataError``."""
    from ..builder import build
    from ..shapes import check
    from ..spec import load_spec
    from ..studies.record import is_record
    from ..train.checkpoint import CHECKPOINT_ARTIFACT, load_weights, read_position, unpack_checkpoint

    run = store.get_run(run_id)
    if is_record(run):
        raise DataError(f"run {run_id} is a study's record, not a trained model: export one of its member runs")
    name = _artifact(store, run)
    spec = load_spec(run["spec"])
    result = check(spec)
    model = build(spec, result=result)
    blob = store.get_artifact(run_id, name)
    if name == CHECKPOINT_ARTIFACT:
        model.load_state_dict(unpack_checkpoint(blob).model)
        position = read_position(blob)
        source = {"source": "checkpoint", "step": position.get("step"), "examples": position.get("examples")}
    else:
        meta = load_weights(model, blob)
        source = {"source": "final", "step": meta.get("step"), "examples": meta.get("examples")}
    return StoredModel(run=run, spec=spec, check=result, model=model.eval(), source=source)
