"""The learning-rate range test (Leslie Smith 2015; fastai's ``lr_find``).

One pass of at most ``steps`` updates of the spec's model and optimiser, the learning rate
growing exponentially from ``start`` (1e-7) to ``end`` (10): ``lr_i = start * (end/start)^(i/(steps-1))``.
The loss is smoothed with a bias-corrected exponential moving average (``beta`` 0.98) and the
test stops once the smoothed loss exceeds ``stop_factor`` (4) times its minimum. Suggestions:

* **steepest**: where the smoothed loss falls fastest against log(lr) (the most negative
  finite difference, ignoring the first and last few points) — the suggested rate;
* **minimum / 10**: a tenth of the rate at the smoothed minimum (fastai's older rule).

The test trains a throw-away copy of the model (nothing is kept), with the trainer's parts:
``build`` (the spec's initialiser and seed), ``make_optimizer`` and the spec's loss. It is
recorded as an ``lr-find`` record run with the series ``lr``, ``loss`` and ``smoothed_loss``
by update, the numbers in its results and the figure as an artifact.
"""
from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from ..errors import LayerlabError
from ..prepare import prepare_run
from .common import Timer, out_dir_for
from .record import StudyResult, Table, create_record, fail_record, finish_record

__all__ = ["lr_find", "range_test", "suggest"]


def suggest(lrs: list[float], smoothed: list[float], *, skip_start: int = 5, skip_end: int = 3) -> dict:
    """``{"steepest", "min_lr", "min_over_10", "suggested"}`` from a smoothed loss curve."""
    lr = np.asarray(lrs, float)
    s = np.asarray(smoothed, float)
    ok = np.isfinite(s)
    lr, s = lr[ok], s[ok]
    out = {"steepest": None, "min_lr": None, "min_over_10": None, "suggested": None}
    if len(s) < 2:
        return out
    i_min = int(np.argmin(s))
    out["min_lr"] = float(lr[i_min])
    out["min_over_10"] = float(lr[i_min] / 10)
    lo, hi = skip_start, len(s) - skip_end
    if hi - lo >= 3:
        grads = np.gradient(s[lo:hi], np.log(lr[lo:hi]))
        out["steepest"] = float(lr[lo + int(np.argmin(grads))])
    out["suggested"] = out["steepest"] or out["min_over_10"]
    return out


def _check_range(start: float, end: float, steps: int) -> None:
    if not 0 < start < end:
        raise LayerlabError(f"the range test needs 0 < start < end. Received: start={start}, end={end}")
    if steps < 10:
        raise LayerlabError(f"The 'steps' parameter of lr_find must be an integer >= 10. Got {steps!r} instead.")


def range_test(spec, *, start: float = 1e-7, end: float = 10.0, steps: int = 100, beta: float = 0.98,
               stop_factor: float = 4.0, device: str | None = None, data=None) -> dict:
    """Run the test on a ``Spec`` or ``PreparedRun``; return ``{"lr", "loss", "smoothed", "stopped_at", ...suggest()}``."""
    import torch
    from ..builder import build
    from ..train import make_objective, make_optimizer, resolve_device
    _check_range(start, end, steps)
    prepared = prepare_run(spec, need_data=data is None)
    spec = prepared.spec
    dev = resolve_device(device or spec.train.device)
    if data is None:
        data = prepared.load_data(dev)
    objective = make_objective(prepared.task, prepared.loss, num_classes=data.info.num_classes,
                               last_layer=spec.model[-1].kind if spec.model else None)
    model = build(spec).to(dev)
    model.train()
    opt = make_optimizer(model.parameters(), spec.train)
    gen = torch.Generator().manual_seed(spec.train.seed)
    n, bs = len(data.train), spec.train.batch_size
    X, Y = data.train.x, data.train.y
    lrs, losses, smoothed = [], [], []
    avg, best = 0.0, math.inf
    perm, pos = torch.randperm(n, generator=gen).to(dev), 0
    stopped = "end of range"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.train.seed)
        for i in range(steps):
            lr = start * (end / start) ** (i / (steps - 1))
            for g in opt.param_groups:
                g["lr"] = lr
            if pos + bs > n and pos > 0:
                perm, pos = torch.randperm(n, generator=gen).to(dev), 0
            idx = perm[pos:pos + bs]
            pos += bs
            x = data.prepare(X[idx])
            loss = objective(model(x), objective.target(x, Y[idx]))
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            value = loss.detach().item()
            lrs.append(lr)
            losses.append(value)
            if not math.isfinite(value):
                smoothed.append(math.nan)
                stopped = "loss not finite"
                break
            avg = beta * avg + (1 - beta) * value
            s = avg / (1 - beta ** (i + 1))
            smoothed.append(s)
            best = min(best, s)
            if i > 0 and s > stop_factor * best:
                stopped = f"smoothed loss above {stop_factor:g} × its minimum"
                break
    return {"lr": lrs, "loss": losses, "smoothed": smoothed, "stopped_at": lrs[-1] if lrs else None,
            "stop_reason": stopped, "updates": len(lrs), **suggest(lrs, smoothed)}


def lr_find(source: str | Path | dict, *, store, overrides: list[str] | None = None, start: float = 1e-7,
            end: float = 10.0, steps: int = 100, stop_factor: float = 4.0, out_dir: str | Path | None = None,
            device: str | None = None) -> StudyResult:
    """The range test on a spec or preset, recorded in ``store``; see the module doc."""
    timer = Timer()
    _check_range(start, end, steps)
    prepared = prepare_run(source, overrides)  # every problem before the record exists
    spec = prepared.spec
    title = f"{spec.model_label()} on {spec.data.dataset} · {spec.train.optimizer}, batch {spec.train.batch_size}"
    rid = create_record(store, kind="lr-find", name="lr-find", spec=spec.to_dict(), title=title)
    try:
        r = range_test(prepared, start=start, end=end, steps=steps, stop_factor=stop_factor, device=device)
        wall = time.time()
        bs = spec.train.batch_size
        rows = []
        for i, (lr, loss, sm) in enumerate(zip(r["lr"], r["loss"], r["smoothed"])):
            rows += [("lr", i + 1, (i + 1) * bs, wall, lr), ("loss", i + 1, (i + 1) * bs, wall, loss),
                     ("smoothed_loss", i + 1, (i + 1) * bs, wall, sm)]
        store.add_metrics(rid, rows)
        out = out_dir_for(out_dir, f"lr-find-{rid}")
        from ..report.figures import lr_find_figure
        fig = lr_find_figure(r["lr"], r["loss"], r["smoothed"], out / "lr_find.png", suggested=r["suggested"],
                             steepest=r["steepest"], min_lr=r["min_over_10"], title=f"Learning-rate range test · {title}")
        numbers = {k: r[k] for k in ("suggested", "steepest", "min_lr", "min_over_10", "stopped_at", "stop_reason",
                                     "updates")}
        numbers.update(start=start, end=end, steps=steps, stop_factor=stop_factor)
        table = Table("Suggested learning rates", ["rule", "learning rate"],
                      [["steepest descent of the smoothed loss (suggested)", _g(r["steepest"])],
                       ["minimum of the smoothed loss / 10", _g(r["min_over_10"])],
                       ["minimum of the smoothed loss", _g(r["min_lr"])],
                       ["test stopped at", f"{_g(r['stopped_at'])} ({r['stop_reason']}, {r['updates']} updates)"]])
        result = StudyResult(kind="lr-find", name="lr-find", record_id=rid, numbers=numbers, tables=[table],
                             figures={"lr_find": fig}, title=title, elapsed_s=timer.s,
                             captions={"lr_find": "Training loss against the learning rate (log scale), which grows "
                                                  "at every update; the suggested rate is where the smoothed loss "
                                                  "falls fastest."},
                             options={"start": start, "end": end, "steps": steps, "stop_factor": stop_factor},
                             text=(f"{r['updates']} updates of {spec.model_label()} with the learning rate growing "
                                   f"exponentially from {start:g} towards {end:g}; suggested learning rate "
                                   f"{_g(r['suggested'])} (steepest descent), minimum/10 {_g(r['min_over_10'])}."))
        finish_record(store, result)
        return result
    except BaseException as exc:
        fail_record(store, rid, f"{type(exc).__name__}: {exc}")
        raise


def _g(v) -> str:
    return "—" if v is None else f"{v:.3g}"
