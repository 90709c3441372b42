"""What the trainer stores at evaluation points to show the network's insides.

* **Decision boundary** (data sets whose inputs are 2 values: circle, xor, gauss, spiral, plane,
  multi-gauss): the model's output over a ``GRID`` x ``GRID`` grid of the input plane -- the
  probability of the last class (``positive``) for classification, the first output value for
  regression -- and, for each unit of the first ``HIDDEN_LAYERS`` hidden layers (up to
  ``MAX_UNITS`` each), its activation over a ``NEURON_GRID`` x ``NEURON_GRID`` grid. A hidden
  layer is a weighted layer (fc) that is not the last one; its units' activation is the output of
  the last module before the next weighted layer (after its activation function), as in
  TensorFlow Playground. The plane spans the data set's extent (train and test inputs, raw, each
  axis padded by ``PAD`` of its width). Grids are quantised to uint8 between their own min and max
  and zlib-compressed: a boundary with 32 neuron maps is a few KB.
* **Histograms**: per layer with a weight tensor (fc, conv, batch-norm), ``BINS`` equal bins of its
  weights and of their gradient from the last update, over [min, max] of the finite values at
  that point (a constant tensor gets [v - 0.5, v + 0.5]); counts, not raw tensors.

Bounded space and time: a run stores views at step 0, the end (or a stop) and at most ``MAX_POINTS``
evaluation points between, at least ``total_examples / MAX_POINTS`` examples apart, and only while
the time spent storing them stays under ``TIME_SHARE`` of the run's wall time so far (measured:
a tiny model's updates are so cheap that a boundary at every evaluation point would double its run).
"""
from __future__ import annotations

import math
import time
import zlib

import numpy as np
import torch
from torch import nn

__all__ = ["GRID", "NEURON_GRID", "MAX_UNITS", "HIDDEN_LAYERS", "BINS", "MAX_POINTS", "PAD", "TIME_SHARE",
           "has_plane", "plane_extent", "plane_points", "boundary", "histograms", "quantize", "dequantize",
           "decode_boundary", "hidden_layers", "ViewRecorder"]

GRID = 64            # boundary grid per side
NEURON_GRID = 24     # per-neuron map per side
MAX_UNITS = 16       # units shown per hidden layer
HIDDEN_LAYERS = 2    # hidden layers with per-neuron maps
BINS = 30            # bins of each histogram
MAX_POINTS = 100     # views stored per run between step 0 and the end, at most
PAD = 0.05           # the plane's margin around the data, a fraction of each axis's width
TIME_SHARE = 0.03    # views may take this share of the run's wall time (the contract: at most 5 %)

_WEIGHTED = (nn.Linear, nn.Conv1d, nn.Conv2d)


def has_plane(info) -> bool:
    """Whether a data set's inputs are points of a plane (2 values), so a boundary can be drawn."""
    return tuple(info.input_shape) == (2,)


def plane_extent(data) -> list[list[float]]:
    """``[[x0, x1], [y0, y1]]``: the raw inputs' range over train and test, padded by ``PAD``."""
    xs = torch.cat([data.train.x.float(), data.test.x.float()]).cpu()
    xs = xs[torch.isfinite(xs).all(1)]
    lo, hi = (xs.min(0).values, xs.max(0).values) if len(xs) else (torch.full((2,), -1.0), torch.ones(2))
    out = []
    for a, b in zip(lo.tolist(), hi.tolist()):
        width = (b - a) or 1.0
        out.append([a - PAD * width, b + PAD * width])
    return out


def plane_points(extent, size: int) -> torch.Tensor:
    """(size*size, 2) raw inputs, row-major: row i is y = y0 + (i + 0.5) * cell, column j x likewise."""
    (x0, x1), (y0, y1) = extent
    xs = x0 + (torch.arange(size, dtype=torch.float32) + 0.5) * (x1 - x0) / size
    ys = y0 + (torch.arange(size, dtype=torch.float32) + 0.5) * (y1 - y0) / size
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # (size, size) each
    return torch.stack([gx.reshape(-1), gy.reshape(-1)], 1)  # (size*size, 2)


def quantize(values: torch.Tensor) -> tuple[bytes, float, float]:
    """uint8 levels from min (0) to max (255) of the finite values; a non-finite value is level 0."""
    v = values.detach().float().cpu().reshape(-1)
    finite = torch.isfinite(v)
    if not bool(finite.any()):
        return bytes(len(v)), math.nan, math.nan
    lo, hi = float(v[finite].min()), float(v[finite].max())
    scale = 255.0 / (hi - lo) if hi > lo else 0.0
    q = torch.where(finite, ((v - lo) * scale).round(), torch.zeros_like(v)).clamp(0, 255).to(torch.uint8)
    return q.numpy().tobytes(), lo, hi


def _quantize_columns(values: torch.Tensor) -> tuple[bytes, list[float], list[float]]:
    """``quantize`` of each column of a (points, units) tensor at once: the maps' levels unit after unit."""
    v = values.detach().float().cpu()
    finite = torch.isfinite(v)
    lo = torch.where(finite, v, torch.full_like(v, math.inf)).min(0).values   # (units,)
    hi = torch.where(finite, v, torch.full_like(v, -math.inf)).max(0).values
    span = hi - lo
    scale = torch.where(span > 0, 255.0 / span, torch.zeros_like(span))
    q = torch.where(finite, ((v - lo) * scale).round(), torch.zeros_like(v)).clamp(0, 255).to(torch.uint8)
    none = ~finite.any(0)  # a unit with no finite value: NaN bounds, as quantize says
    lows = [math.nan if n else a for a, n in zip(lo.tolist(), none.tolist())]
    highs = [math.nan if n else b for b, n in zip(hi.tolist(), none.tolist())]
    return q.T.contiguous().numpy().tobytes(), lows, highs


def dequantize(levels: bytes | np.ndarray, lo: float, hi: float, shape: tuple[int, ...]) -> np.ndarray:
    """The values ``quantize`` kept (within (hi - lo) / 510 of the originals)."""
    q = np.frombuffer(levels, dtype=np.uint8) if isinstance(levels, (bytes, bytearray)) else levels
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return np.full(shape, np.nan, dtype=np.float32)
    return (lo + q.astype(np.float32) * ((hi - lo) / 255.0)).reshape(shape)


def hidden_layers(model: nn.Module, limit: int = HIDDEN_LAYERS) -> list[tuple[int, int]]:
    """``[(weighted layer index, index of the module whose output is its activation)]``, the first ``limit``."""
    children = list(model.children())
    weighted = [i for i, m in enumerate(children) if isinstance(m, _WEIGHTED)]
    return [(w, nxt - 1) for w, nxt in zip(weighted, weighted[1:])][:limit]


@torch.no_grad()
def _forward_keep(model: nn.Module, x: torch.Tensor, keep: set[int]) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    """The model's output and the outputs of the modules at ``keep`` (an nn.Sequential, run in order)."""
    kept = {}
    h = x
    for i, module in enumerate(model.children()):
        h = module(h)
        if i in keep:
            kept[i] = h
    return h, kept


def _value(out: torch.Tensor, objective) -> torch.Tensor:
    """What the boundary shows per point: p(last class), or the first output value."""
    if objective.classifies:
        return objective.probabilities(out)[:, -1]
    return out.float().reshape(out.shape[0], -1)[:, 0]


@torch.no_grad()
def boundary(model: nn.Module, data, objective, extent, *, size: int = GRID,
             neuron_size: int = NEURON_GRID) -> tuple[dict, bytes]:
    """``(meta, data)``: the model's value over the plane and its hidden units' maps, quantised.

    ``data`` (zlib) holds the boundary's ``size*size`` levels, then each map's ``neuron_size**2``,
    in the order of ``meta["neurons"]``; ``decode_boundary`` reads it back.
    """
    names = [n for n, _ in model.named_children()]
    was_training = model.training
    model.eval()
    try:
        grid = data.prepare(plane_points(extent, size).to(data.device))
        value = _value(model(grid), objective)  # (size*size,)
        pairs = hidden_layers(model)
        small = data.prepare(plane_points(extent, neuron_size).to(data.device))
        _, kept = _forward_keep(model, small, {act for _, act in pairs})
    finally:
        model.train(was_training)
    levels, lo, hi = quantize(value)
    blobs, neurons = [levels], []
    for w, act in pairs:
        out = kept[act]
        if out.dim() != 2:  # a reshaped (conv) hidden output has no one value per unit
            continue
        shown = min(MAX_UNITS, out.shape[1])
        q, lows, highs = _quantize_columns(out[:, :shown])  # (shown, n*n) levels: one map per unit
        blobs.append(q)
        neurons.append({"layer": w, "name": names[w], "output": names[act], "units": int(out.shape[1]),
                        "shown": shown, "maps": [{"min": a, "max": b} for a, b in zip(lows, highs)]})
    meta = {"size": size, "extent": extent, "task": objective.task, "min": lo, "max": hi,
            "value": f"p({_last_class(data)})" if objective.classifies else "output",
            "neuron_size": neuron_size, "neurons": neurons}
    return meta, zlib.compress(b"".join(blobs), 3)


def _last_class(data) -> str:
    names = tuple(data.info.class_names)
    return names[-1] if names else str((data.info.num_classes or 1) - 1)


def boundary_levels(meta: dict, blob: bytes) -> dict:
    """``{"grid": bytes, "neurons": [[bytes per map] per layer]}``: a stored view's uint8 levels, split by the one
    layout (the grid, then each layer's maps in order), from one decompression."""
    raw = zlib.decompress(blob)
    size, n = meta["size"], meta["neuron_size"]
    at, layers = size * size, []
    for layer in meta["neurons"]:
        maps = []
        for _ in layer["maps"]:
            maps.append(raw[at:at + n * n])
            at += n * n
        layers.append(maps)
    return {"grid": raw[:size * size], "neurons": layers}


def decode_boundary(meta: dict, blob: bytes | None = None, *, levels: dict | None = None) -> dict:
    """``{"grid": (size, size) float array, "neurons": [[(n, n) arrays] per layer]}`` from a stored view
    (or from its ``boundary_levels``)."""
    levels = levels if levels is not None else boundary_levels(meta, blob)
    size, n = meta["size"], meta["neuron_size"]
    grid = dequantize(levels["grid"], meta["min"], meta["max"], (size, size))
    layers = [[dequantize(q, m["min"], m["max"], (n, n)) for q, m in zip(maps, layer["maps"])]
              for maps, layer in zip(levels["neurons"], meta["neurons"])]
    return {"grid": grid, "neurons": layers}


def _histogram(t: torch.Tensor | None, bins: int) -> dict | None:
    if t is None:
        return None
    v = t.detach().float().reshape(-1)
    finite = v[torch.isfinite(v)]
    if finite.numel() == 0:
        return {"lo": math.nan, "hi": math.nan, "counts": [0] * bins, "n": 0, "nonfinite": int(v.numel())}
    lo, hi = float(finite.min()), float(finite.max())
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    counts = torch.histc(finite, bins=bins, min=lo, max=hi)
    return {"lo": lo, "hi": hi, "counts": [int(c) for c in counts.tolist()], "n": int(finite.numel()),
            "nonfinite": int(v.numel() - finite.numel())}


@torch.no_grad()
def histograms(model: nn.Module, *, bins: int = BINS) -> dict:
    """``{"bins", "layers": [{index, name, weights: {lo, hi, counts, n, nonfinite}, grads: ... | None}]}``."""
    layers = []
    for i, (name, module) in enumerate(model.named_children()):
        weight = getattr(module, "weight", None)
        if not isinstance(weight, torch.Tensor):
            continue
        layers.append({"index": i, "name": name, "shape": list(weight.shape),
                       "weights": _histogram(weight, bins), "grads": _histogram(weight.grad, bins)})
    return {"bins": bins, "layers": layers}


class ViewRecorder:
    """Stores views at evaluation points, thinned to at most ``max_points`` per run (plus the ends) and to
    ``TIME_SHARE`` of the wall time.

    Each stored point also writes a small ``view`` event (``{step, examples, kinds}``), so the
    run's stream tells a dashboard when there is a new boundary or histogram to fetch.
    """

    def __init__(self, rec, data, objective, *, total_examples: int, max_points: int = MAX_POINTS):
        self.rec, self.data, self.objective = rec, data, objective
        self.extent = plane_extent(data) if has_plane(data.info) and len(data.train) else None
        self.gap = total_examples / max(1, max_points)
        self.last = -math.inf
        self.started, self.spent = time.perf_counter(), 0.0  # this session's clock, and the seconds views took

    def record(self, model: nn.Module, step: int, examples: int, *, force: bool = False) -> list[str]:
        """Store this point's views when due (``force``: step 0, the end); return the kinds stored."""
        now = time.perf_counter()
        due = examples - self.last >= self.gap and self.spent <= TIME_SHARE * (now - self.started)
        if not self.rec.persistent or not (force or due):
            return []
        self.last = examples
        store, run_id = self.rec.store, self.rec.run_id
        kinds = []
        if self.extent is not None:  # first: a reader that finds this step's histograms finds its boundary too
            meta, blob = boundary(model, self.data, self.objective, self.extent)
            store.put_view(run_id, "boundary", step, examples, meta, blob)
            kinds.append("boundary")
        store.put_view(run_id, "histograms", step, examples, histograms(model))
        kinds.append("histograms")
        self.rec.event("view", {"step": step, "examples": examples, "kinds": kinds}, step)
        self.spent += time.perf_counter() - now
        return kinds
