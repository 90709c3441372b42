"""Evaluation on whole splits (or a fixed subset of one), prediction snapshots, and inference speed.

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

__all__ = ["evaluate", "eval_subset_indices", "predict_examples", "worst_examples", "measure_inference",
           "json_number", "json_safe", "autocast", "default_objective", "EVAL_SUBSET_SEED", "INFERENCE_SECONDS"]

# The live evaluation subset does not depend on train.seed: every run on the same data sees the same one.
EVAL_SUBSET_SEED = 20240611
INFERENCE_SECONDS = 0.3  # each inference-speed measurement stops after about this long


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


def eval_subset_indices(data, size: int | str | None, *, split: str = "test",
                        seed: int = EVAL_SUBSET_SEED) -> torch.Tensor | None:
    """The fixed evaluation subset of ``split``: ``size`` example indices (sorted, on the CPU), or None for all.

    None also when ``size`` is ``"all"``/None or at least the split's size. Classification: stratified,
    each class gets its share of ``size`` (largest remainders; within 1 of ``size * n_class / n``),
    drawn at random within the class. Other tasks: a random subset. The draw uses ``seed`` only, so
    the subset depends on the data alone, never on ``train.seed``.
    """
    s = data.split(split)
    n = len(s)
    if size is None or size == "all" or int(size) >= n:
        return None
    size = int(size)
    gen = torch.Generator().manual_seed(seed)
    if data.info.task != "classification":
        return torch.randperm(n, generator=gen)[:size].sort().values
    labels = s.y.detach().to("cpu").long()
    counts = torch.bincount(labels, minlength=max(1, int(data.info.num_classes or 0)))
    quota = counts.double() * size / n
    take = quota.floor().long()
    short = size - int(take.sum())
    if short > 0:  # largest remainders first (ties: the lower class)
        order = sorted(range(len(counts)), key=lambda c: (-(quota[c] - take[c]).item(), c))
        for c in order[:short]:
            take[c] += 1
    picked = []
    for c in range(len(counts)):
        if take[c] > 0:
            members = (labels == c).nonzero().flatten()
            picked.append(members[torch.randperm(len(members), generator=gen)[:int(take[c])]])
    return torch.cat(picked).sort().values


@torch.no_grad()
def evaluate(model: torch.nn.Module, data, objective: Objective | None = None, *, split: str = "test",
             batch_size: int = 512, amp: bool = False, detail: bool = False,
             indices: torch.Tensor | None = None, subset: torch.Tensor | None = None) -> dict:
    """Mean loss and accuracy of ``model`` on the whole ``split`` of a resident data set.

    ``indices``: evaluate only those examples of the split instead. ``subset``: example indices
    whose share of the same pass is also returned, as ``result["subset"] = {loss, accuracy,
    examples}`` (the whole split's numbers and a subset's, from one pass).

    Batches of 512: on a CPU, 1024 conv activations fall out of the caches (mnist-conv evaluates
    1.6x slower). Sums stay on the device and are read once at the end. With ``detail`` (classification),
    also the confusion matrix (rows: true class, columns: predicted), each example's
    probability of its true class (``p_true``) and its predicted class (``pred``), as tensors.
    """
    objective = objective or default_objective(data, model)
    s = data.split(split)
    device = data.device
    xs, ys = s.x, s.y
    if indices is not None:
        idx = indices.to(xs.device)
        xs, ys = xs[idx], ys[idx]
    n = int(xs.shape[0])
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    mask = None
    if subset is not None:
        mask = torch.zeros(n, dtype=torch.bool, device=device)
        mask[subset.to(device)] = True
        sub_loss = torch.zeros((), dtype=torch.float64, device=device)
        sub_correct = torch.zeros((), dtype=torch.int64, device=device)
    preds, p_true = [], []
    with _EvalMode(model):
        for i in range(0, n, batch_size):
            x = data.prepare(xs[i:i + batch_size])
            y = ys[i:i + batch_size]
            with autocast(device, amp):
                out = model(x)
            per = objective.per_example(out, objective.target(x, y))
            loss_sum += per.sum(dtype=torch.float64)
            if mask is not None:
                m = mask[i:i + batch_size]
                sub_loss += per[m].sum(dtype=torch.float64)
            if objective.classifies:
                pred = out.argmax(1)
                hit = pred == y
                correct += hit.sum()
                if mask is not None:
                    sub_correct += hit[m].sum()
                if detail:
                    preds.append(pred)
                    p_true.append(objective.probabilities(out).gather(1, y[:, None])[:, 0])
    result = {"loss": loss_sum.item() / max(1, n), "accuracy": None, "examples": n}
    if mask is not None:
        k = len(subset)
        result["subset"] = {"loss": sub_loss.item() / max(1, k), "examples": k,
                            "accuracy": sub_correct.item() / max(1, k) if objective.classifies else None}
    if objective.classifies:
        result["accuracy"] = correct.item() / max(1, n)
        if detail:
            pred = torch.cat(preds)
            c = objective.num_classes
            result["pred"] = pred
            result["p_true"] = torch.cat(p_true)
            result["confusion"] = torch.bincount(ys * c + pred, minlength=c * c).reshape(c, c).tolist()
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
                      max_examples: int = 10000, max_seconds: float = INFERENCE_SECONDS, amp: bool = False) -> dict:
    """Inference speed, eval mode, no grad, inputs prepared beforehand (only ``model(x)`` is timed).

    ``inferences_per_sec``: the first (up to) ``max_examples`` test examples in batches of
    ``batch_size``, examples / seconds. ``inferences_per_sec_b1`` and ``latency_ms_b1`` (the
    Model Builder's definition): one example at a time, up to ``calls`` calls, each waited for
    (CUDA is synchronised per call). Each measurement (after its warm-up) stops at the first
    batch or call that ends after ``max_seconds``, and counts what it did up to there.
    """
    s = data.test
    device = data.device
    n = min(len(s), max_examples)
    clock = time.perf_counter
    x = data.prepare(s.x[:n])
    with _EvalMode(model), autocast(device, amp):
        model(x[:batch_size])  # warm-up
        _sync(device)
        done = 0
        t0 = clock()
        while done < n:
            model(x[done:done + batch_size])
            done = min(n, done + batch_size)
            if clock() - t0 >= max_seconds:
                break
        _sync(device)
        batched = clock() - t0
        singles = [x[i % n:i % n + 1] for i in range(calls)]
        for xi in singles[:10]:
            model(xi)
        _sync(device)
        made = 0
        t0 = clock()
        for xi in singles:
            model(xi)
            _sync(device)
            made += 1
            if clock() - t0 >= max_seconds:
                break
        single = clock() - t0
    return {"inferences_per_sec": done / batched if batched > 0 else math.inf,
            "inferences_per_sec_b1": made / single if single > 0 else math.inf,
            "latency_ms_b1": 1000.0 * single / made,
            "inference_batch_size": batch_size}
