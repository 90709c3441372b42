"""Reading a run's stored views back: the one place the API, the CLI and the report get them from.

A boundary is asked of a run whose data set has 2-D inputs (``train.views.has_plane``); any other
run, or a study's record, is a ``DataError`` (400) saying why. A run that has stored none yet is a
``Conflict`` (409); a step with no view a ``NotFound`` (404) naming the stored range. Histograms are
regrouped per layer, oldest point first, each with its bin edges; diagnoses that concern one layer
(dead ReLUs, an exploding gradient) come with that layer's index (``diagnose.diagnosis_layer``).
"""
from __future__ import annotations

import numpy as np

from .errors import Conflict, DataError, NotFound
from .train.views import boundary_levels, decode_boundary, has_plane

__all__ = ["boundary_run", "read_boundary", "read_histograms", "read_points", "MAX_POINTS_SHOWN"]

MAX_POINTS_SHOWN = 1000  # training and test points sent (each split's first ones)


def boundary_run(run: dict):
    """The catalogue entry of a run that can have a boundary, else ``DataError`` with the reason."""
    from .data import DATASETS
    from .studies.record import is_record
    if is_record(run):
        raise DataError(f"run {run['id']} is a study's record, not a trained model: open one of its member runs")
    info = DATASETS.get(run.get("dataset") or "")
    if info is None or not has_plane(info):
        shape = "×".join(map(str, info.input_shape)) if info else "unknown"
        raise DataError(f"run {run['id']} trains on {run.get('dataset')!r}, whose inputs are {shape} values: a "
                        f"decision boundary needs inputs of 2 values (circle, xor, gauss, spiral, plane, multi-gauss)")
    return info


def read_boundary(store, run_id: int, step: int | None = None, *, decode: bool = True) -> dict:
    """``{"step", "examples", "steps", "meta", "levels", "grid", "neurons"}`` of the latest (or ``step``'s) boundary.

    ``levels`` are the stored uint8 levels (``boundary_levels``); ``grid`` and ``neurons`` their float values
    (``decode_boundary``), left out with ``decode=False`` (the API sends the levels as they are).
    """
    run = store.get_run(run_id)  # RunNotFound: 404
    boundary_run(run)
    steps = store.view_steps(run_id, "boundary")
    rows = store.views(run_id, "boundary", step=step, latest=step is None)
    if not rows:
        if step is not None and steps:
            raise NotFound(f"run {run_id} has no boundary at step {step}; it has {len(steps)}, at steps "
                           f"{steps[0]} to {steps[-1]} (the `steps` of the latest answer)")
        if step is not None:
            raise NotFound(f"run {run_id} has no boundary at step {step}; it has none yet")
        raise Conflict(f"run {run_id} is {run['status']} and has no boundary stored yet: the first is stored "
                       f"when training starts (step 0)")
    row = rows[0]
    levels = boundary_levels(row["meta"], row["data"])
    out = {"step": row["step"], "examples": row["examples"], "steps": steps, "meta": row["meta"], "levels": levels}
    return {**out, **decode_boundary(row["meta"], levels=levels)} if decode else out


def read_points(data, limit: int = MAX_POINTS_SHOWN) -> dict:
    """``{"train": {"x": [[x, y]...], "y": [...]}, "test": ...}``: each split's first ``limit`` raw points."""
    out = {}
    for name in ("train", "test"):
        split = data.split(name)
        x = split.x[:limit].float().cpu()
        y = split.y[:limit].cpu()
        values = y.reshape(len(y), -1)[:, 0].tolist() if y.is_floating_point() else y.tolist()
        out[name] = {"x": x.tolist(), "y": values, "of": len(split)}
    return out


def _with_edges(h: dict | None) -> dict | None:
    if h is None:
        return None
    edges = np.linspace(h["lo"], h["hi"], len(h["counts"]) + 1).tolist()
    return {**h, "edges": edges}


def read_histograms(store, run_id: int, *, layer: int | None = None) -> dict:
    """``{"bins", "steps", "layers": [{index, name, shape, points: [{step, examples, weights, grads}]}], "diagnoses"}``."""
    from .studies.record import is_record
    from .train.diagnose import diagnosis_layer
    run = store.get_run(run_id)
    if is_record(run):
        raise DataError(f"run {run_id} is a study's record, not a trained model: open one of its member runs")
    rows = store.views(run_id, "histograms", with_data=False)
    layers: dict[int, dict] = {}
    bins = None
    for row in rows:
        meta = row["meta"]
        bins = meta["bins"]
        for entry in meta["layers"]:
            if layer is not None and entry["index"] != layer:
                continue
            out = layers.setdefault(entry["index"], {"index": entry["index"], "name": entry["name"],
                                                     "shape": entry["shape"], "points": []})
            out["points"].append({"step": row["step"], "examples": row["examples"],
                                  "weights": _with_edges(entry["weights"]), "grads": _with_edges(entry["grads"])})
    if layer is not None and rows and layer not in layers:
        known = sorted({e["index"] for e in rows[-1]["meta"]["layers"]})
        raise NotFound(f"run {run_id} has no histograms of layer {layer}; layers with weights: "
                       f"{', '.join(map(str, known)) or 'none'}")
    from .spec import load_spec
    kinds = [spec_layer.kind for spec_layer in load_spec(run["spec"]).model]
    diagnoses = []
    for event in store.events(run_id, kinds=["diagnosis", "divergence"]):
        p = event["payload"] if isinstance(event["payload"], dict) else {}
        kind = "diverged" if event["kind"] == "divergence" else p.get("kind")
        where = diagnosis_layer(kind, p, kinds, dead=_dead_at(store, run_id, kinds, p.get("step")))
        if where is not None:
            diagnoses.append({"kind": kind, "step": p.get("step"), "text": p.get("text", ""), **where})
    return {"run_id": run_id, "bins": bins, "steps": [r["step"] for r in rows],
            "layers": [layers[i] for i in sorted(layers)], "diagnoses": diagnoses}


def _dead_at(store, run_id: int, kinds: list[str], step) -> dict[str, float]:
    """The dead-ReLU fractions probed at ``step`` (``dead_relu/<module>`` metric rows)."""
    from .builder import layer_names
    names = [f"dead_relu/{n}" for n, k in zip(layer_names(kinds), kinds) if k == "relu"]
    if not names or step is None:
        return {}
    return {r["name"].split("/", 1)[1]: r["value"] for r in store.metrics(run_id, names=names) if r["step"] == step}
