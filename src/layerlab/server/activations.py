"""What every layer of a run's network makes of one test example: feature maps, vectors and conv filters.

The model is the run's own, as ``export.weights.stored_model`` loads it for an export too: built
from its stored spec and loaded with its stored weights — the final weights of a run that ended (``weights.safetensors``), the latest
checkpoint of one that is queued or running (or that was interrupted before writing final
weights). One forward pass in eval mode with a forward hook on each layer of the spec records
that layer's output; the example is test example ``index`` of the run's data as the trainer
loads it (the server's ``DataCache``), prepared by ``ResidentDataset.prepare`` as in training.

Values travel compactly: a layer whose output has channels (conv, pool, their activations) sends
each of its first ``MAX_CHANNELS`` channels as an 8-bit greyscale PNG, scaled from the layer's
min to its max over the whole output (so maps of one layer compare); a flat output (fc, flatten)
sends its first ``MAX_UNITS`` values as numbers. A conv layer also sends its first
``MAX_CHANNELS`` filters as PNGs, one per output channel (its input channels side by side, or
one RGB image over three input channels), scaled symmetrically so that a zero weight is mid-grey.
The model is built for each request (a few milliseconds for mnist-conv), so concurrent requests
never share hooked modules.
"""
from __future__ import annotations

import base64

import numpy as np

from ..errors import DataError
from ..layers import CATALOGUE
from .datacache import DataCache, check_index
from .images import png_bytes
from .predict import refuse_large_model

__all__ = ["example_activations", "MAX_CHANNELS", "MAX_UNITS"]

MAX_CHANNELS = 16    # feature maps and filters sent per layer (the first ones); the answer says how many exist
MAX_UNITS = 1024     # values of a flat output sent for bars (the first ones)
_FILTER_GAP = 1      # pixels between input-channel slices of one filter image (mid-grey, like a zero weight)


def example_activations(store, run_id: int, cache: DataCache, index: int) -> dict:
    """Every layer's output for test example ``index`` of run ``run_id``, and its conv filters.

    ``{run_id, index, label, class_name, weights: {source, step, examples}, max_channels, max_units,
    layers: [{index, kind, name, output_shape, min, max, view, channels, maps | values, filters?}]}``.
    Raises ``RunNotFound`` (404), ``DataError`` (400: not an image model, index out of range),
    ``Conflict`` (409: no weights stored yet) and ``ModelTooLarge`` (413).
    """
    import torch

    from ..builder import layer_names
    run = store.get_run(run_id)
    spec = _image_spec(run)
    data = cache.for_spec_data(run["spec"].get("data"))
    check_index(data, index)  # 400 naming the valid range, as the image route answers
    stored = _model(store, run, spec)
    names = layer_names([layer.kind for layer in spec.model])  # the builder's module names: conv2d1, relu1...
    modules = [getattr(stored.model, n) for n in names]
    x = data.prepare(data.test.x[index:index + 1])  # (1, C, H, W), normalised as in training
    outputs: list = [None] * len(modules)
    hooks = [m.register_forward_hook(_recorder(outputs, i)) for i, m in enumerate(modules)]
    try:
        with torch.inference_mode():
            stored.model(x)
    finally:
        for hook in hooks:
            hook.remove()
    layers = []
    for i, (layer, name, module, out) in enumerate(zip(spec.model, names, modules, outputs)):
        row = {"index": i, "kind": layer.kind, "name": name, **_output_json(out[0])}
        if CATALOGUE[layer.kind].category == "convolution":
            row["filters"] = _filters_json(module.weight.detach())
        layers.append(row)
    label = data.test.y[index]
    out = {"run_id": run_id, "index": index, "weights": stored.source, "max_channels": MAX_CHANNELS,
           "max_units": MAX_UNITS, "layers": layers, "label": None, "class_name": None}
    if label.ndim == 0 and not label.is_floating_point():
        out["label"] = int(label)
        classes = data.info.class_names
        out["class_name"] = classes[out["label"]] if 0 <= out["label"] < len(classes) else None
    return out


# ------------------------------------------------------------------ the model and its weights


def _image_spec(run: dict):
    """The run's spec, if it is a model on images; else ``DataError`` (400) with the reason."""
    from ..data import DATASETS
    from ..spec import load_spec
    from ..studies.record import is_record
    if is_record(run):
        raise DataError(f"run {run['id']} is a study's record, not a trained model: open one of its member runs")
    info = DATASETS.get(run.get("dataset") or "")
    if info is None or len(info.input_shape) != 3:
        shape = "×".join(map(str, info.input_shape)) if info else "unknown"
        raise DataError(f"run {run['id']} trains on {run.get('dataset')!r}, whose examples are {shape} values, "
                        "not images: activations and filters are shown for image models only")
    return load_spec(run["spec"])


def _model(store, run: dict, spec):
    """The run's model with its stored weights (``export.weights.stored_model``: the one choice of weights)."""
    from ..export.weights import stored_model
    from ..shapes import check
    # refused before anything is built in the server's memory
    refuse_large_model(check(spec).total_params, f"run {run['id']}'s model", purpose="to show activations")
    return stored_model(store, run["id"])


def _recorder(outputs: list, i: int):
    def hook(module, inputs, output):
        outputs[i] = output.detach()
    return hook


# ------------------------------------------------------------------ values as JSON


def _png64(img: np.ndarray) -> str:
    return base64.b64encode(png_bytes(img)).decode("ascii")


def _range(arr: np.ndarray) -> tuple[float, float]:
    """min and max over the finite values (0, 0 when there are none)."""
    finite = arr[np.isfinite(arr)]
    return (float(finite.min()), float(finite.max())) if finite.size else (0.0, 0.0)


def _quantise(arr: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """``lo..hi`` -> 0..255 (uint8); a constant array is black, non-finite values clip to the ends."""
    scaled = (np.nan_to_num(arr, nan=lo, posinf=hi, neginf=lo) - lo) * (255.0 / ((hi - lo) or 1.0))
    return np.clip(scaled, 0, 255).round().astype(np.uint8)


def _as_image(channel: np.ndarray) -> np.ndarray:
    """One channel of any rank as a 2-D image: (L,) -> (1, L); (D, H, W) -> (D*H, W)."""
    if channel.ndim == 0:
        return channel.reshape(1, 1)
    if channel.ndim == 1:
        return channel.reshape(1, -1)
    return channel.reshape(-1, channel.shape[-1])


def _output_json(out) -> dict:
    """One example's layer output (no batch axis): shape, min/max, and maps (channels) or values (flat)."""
    arr = out.float().cpu().numpy()
    raw_lo, raw_hi = float(np.min(arr)), float(np.max(arr))  # NaN when any value is
    lo, hi = _range(arr)
    row = {"output_shape": list(arr.shape), "min": raw_lo, "max": raw_hi}
    if arr.ndim <= 1:
        flat = arr.reshape(-1)
        row.update(view="vector", channels=int(flat.size), values=[float(v) for v in flat[:MAX_UNITS]])
        return row
    q = _quantise(arr, lo, hi)
    row.update(view="maps", channels=int(arr.shape[0]), maps=[_png64(_as_image(c)) for c in q[:MAX_CHANNELS]])
    return row


def _filters_json(weight) -> dict:
    """A conv layer's filters (out, in, *kernel): the first ``MAX_CHANNELS`` as images, zero mid-grey."""
    w = weight.float().cpu().numpy()
    lo, hi = _range(w)
    bound = max(abs(lo), abs(hi))
    q = _quantise(w, -bound, bound)  # symmetric: a zero weight is 128
    out_ch, in_ch = w.shape[0], w.shape[1]
    images = []
    for f in q[:MAX_CHANNELS]:  # f: (in, *kernel)
        if in_ch == 3 and f.ndim == 3:
            images.append(_png64(f.transpose(1, 2, 0)))  # (kh, kw, 3): an RGB filter over RGB inputs
            continue
        slices = [_as_image(s) for s in f[:MAX_CHANNELS]]
        gap = np.full((slices[0].shape[0], _FILTER_GAP), 128, np.uint8)
        tiles = [part for s in slices for part in (s, gap)][:-1]
        images.append(_png64(np.concatenate(tiles, axis=1)))  # input channels side by side
    return {"shape": list(w.shape), "min": lo, "max": hi, "count": int(out_ch), "inputs": int(in_ch),
            "inputs_shown": int(min(in_ch, MAX_CHANNELS)) if in_ch != 3 or w.ndim != 4 else 3,
            "rgb": bool(in_ch == 3 and w.ndim == 4), "images": images}
