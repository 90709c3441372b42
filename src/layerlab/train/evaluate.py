"""Evaluation on whole splits, prediction snapshots, and inference speed.

Everything here runs the model in eval mode without gradients and restores the mode it found.
Results are JSON-ready; in prediction payloads a non-finite number (a NaN probability from a
diverged model) is written as the string ``"NaN"`` (``"Infinity"``, ``"-Infinity"``), so the
payload is standard JSON a browser can parse and the UI can print ``NaN%``.
"""
from __future__ import annotations

import contextlib
import math
import time

import torch

from .losses import Objective, make_objective

__all__ = ["evaluate", "predict_examples", "worst_examples", "measure_inference", "json_number", "json_safe",
           "autocast", "default_objective"]


def json_number(x: float) -> float | str:
    """A float for JSON: finite as is, else "NaN" / "Infinity" / "-Infinity"."""
    x = float(x)
    if math.isfinite(x):
        return x
    return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")


def json_safe(obj):
    """``obj`` with every float passed through ``json_number`` (dicts and lists walked)."""
    if isinstance(obj, float):
        return json_number(obj)
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [json_safe(v) for v in obj]
    return obj


def autocast(device: torch.device, amp: bool):
    """bf16 autocast on CUDA when ``amp``; a no-op elsewhere."""
    if amp and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def default_objective(data, model: torch.nn.Module | None = None) -> Objective:
    """The data set's own objective: cross-entropy for classes, MSE otherwise."""
    info = data.info
    last = None
    if model is not None:
        children = list(model.children())
        last = type(children[-1]).__name__.lower() if children else None
    loss = "cross_entropy" if info.task == "classification" else "mse"
    return make_objective(info.task, loss, num_classes=info.num_classes, last_layer=last)


class _EvalMode:
    def __init__(self, model: torch.nn.Module):
        self.model, self.was_training = model, model.training

    def __enter__(self):
        self.model.eval()
        return self.model

    def __exit__(self, *exc):
        self.model.train(self.was_training)


@torch.no_grad()
def evaluate(model: torch.nn.Module, data, objective: Objective | None = None, *, split: str = "test",
             batch_size: int = 1024, amp: bool = False, detail: bool = False) -> dict:
    """Mean loss and accuracy of ``model`` on the whole ``split`` of a resident data set.

    Sums stay on the device and are read once at the end. With ``detail`` (classification),
    also the confusion matrix (rows: true class, columns: predicted), each example's
    probability of its true class (``p_true``) and its predicted class (``pred``), as tensors.
    """
    objective = objective or default_objective(data, model)
    s = data.split(split)
    n = len(s)
    device = data.device
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    preds, p_true = [], []
    with _EvalMode(model):
        for i in range(0, n, batch_size):
            x = data.prepare(s.x[i:i + batch_size])
            y = s.y[i:i + batch_size]
            with autocast(device, amp):
                out = model(x)
            loss_sum += objective.per_example(out, objective.target(x, y)).sum(dtype=torch.float64)
            if objective.classifies:
                pred = out.argmax(1)
                correct += (pred == y).sum()
                if detail:
                    preds.append(pred)
                    p_true.append(objective.probabilities(out).gather(1, y[:, None])[:, 0])
    result = {"loss": loss_sum.item() / max(1, n), "accuracy": None, "examples": n}
    if objective.classifies:
        result["accuracy"] = correct.item() / max(1, n)
        if detail:
            pred = torch.cat(preds)
            c = objective.num_classes
            result["pred"] = pred
            result["p_true"] = torch.cat(p_true)
            result["confusion"] = torch.bincount(s.y * c + pred, minlength=c * c).reshape(c, c).tolist()
    return result


@torch.no_grad()
def predict_examples(model: torch.nn.Module, data, indices: list[int] | None = None, *,
                     objective: Objective | None = None, split: str = "test", k: int = 3,
                     amp: bool = False) -> list[dict]:
    """Predictions for fixed examples of ``split`` (default: its first 20).

    Classification: ``{index, label, top: [[class, prob], ...] (k best), correct}``.
    Regression: ``{index, target: [...], output: [...]}``. Reconstruction: ``{index, error}``
    (mean squared error of the reconstruction). Non-finite numbers are "NaN"-style strings.
    """
    objective = objective or default_objective(data, model)
    s = data.split(split)
    if indices is None:
        indices = list(range(min(20, len(s))))
    if not indices:
        return []
    idx = torch.as_tensor(indices, dtype=torch.long, device=s.x.device)
    x = data.prepare(s.x[idx])
    y = s.y[idx]
    with _EvalMode(model), autocast(data.device, amp):
        out = model(x)
    out = out.float()
    rows = []
    if objective.classifies:
        probs = objective.probabilities(out)
        top_p, top_c = probs.topk(min(k, probs.shape[1]), dim=1)
        for i, label, tp, tc in zip(indices, y.tolist(), top_p.tolist(), top_c.tolist()):
            rows.append({"index": i, "label": label, "top": [[c, json_number(p)] for c, p in zip(tc, tp)],
                         "correct": tc[0] == label})
    elif objective.task == "reconstruction":
        err = (out.reshape(len(indices), -1) - x.reshape(len(indices), -1)).pow(2).mean(1)
        rows = [{"index": i, "error": json_number(e)} for i, e in zip(indices, err.tolist())]
    else:
        flat_out, flat_y = out.reshape(len(indices), -1).tolist(), y.reshape(len(indices), -1).tolist()
        rows = [{"index": i, "target": t, "output": [json_number(v) for v in o]}
                for i, t, o in zip(indices, flat_y, flat_out)]
    return rows


def worst_examples(p_true: torch.Tensor, pred: torch.Tensor, labels: torch.Tensor, *, k: int = 10) -> list[dict]:
    """The ``k`` test examples with the lowest probability of their true class (NaN counts as lowest)."""
    key = torch.nan_to_num(p_true.float(), nan=-1.0)
    order = torch.argsort(key)[:k].tolist()
    p, pr, y = p_true.tolist(), pred.tolist(), labels.tolist()
    return [{"index": i, "label": y[i], "predicted": pr[i], "p_true": json_number(p[i])} for i in order]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def measure_inference(model: torch.nn.Module, data, *, batch_size: int = 512, calls: int = 100,
                      max_examples: int = 10000, amp: bool = False) -> dict:
    """Inference speed, eval mode, no grad, inputs prepared beforehand (only ``model(x)`` is timed).

    ``inferences_per_sec``: the first ``max_examples`` test examples in batches of ``batch_size``.
    ``inferences_per_sec_b1`` and ``latency_ms_b1`` (the Model Builder's definition): one
    example at a time, ``calls`` calls, each waited for (CUDA is synchronised per call).
    """
    s = data.test
    device = data.device
    n = min(len(s), max_examples)
    x = data.prepare(s.x[:n])
    with _EvalMode(model), autocast(device, amp):
        model(x[:batch_size])  # warm-up
        _sync(device)
        t0 = time.perf_counter()
        for i in range(0, n, batch_size):
            model(x[i:i + batch_size])
        _sync(device)
        batched = time.perf_counter() - t0
        singles = [x[i % n:i % n + 1] for i in range(calls)]
        for xi in singles[:10]:
            model(xi)
        _sync(device)
        t0 = time.perf_counter()
        for xi in singles:
            model(xi)
            _sync(device)
        single = time.perf_counter() - t0
    return {"inferences_per_sec": n / batched if batched > 0 else math.inf,
            "inferences_per_sec_b1": calls / single if single > 0 else math.inf,
            "latency_ms_b1": 1000.0 * single / calls,
            "inference_batch_size": batch_size}
