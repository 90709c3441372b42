"""The toy-function study: which model can learn which function of four numbers?

Targets (data sets ``toy-functions/linear``, ``/max``, ``/logsumexp``): ``sum(x W)`` (linear in x),
``max(x)`` and ``log(sum(exp(x W)))`` (a smooth max of linear features). Models: the linear
model (``toy-linear``: one weighted sum) and the toy convnet (``toy-convnet``: conv1d of 2
filters of width 3, ReLU, max-pool, linear output) trained from several seeds, to show how
much it depends on its initialisation, plus the convnet initialised with all zeros, which
cannot learn at all (every hidden unit computes 0, so no gradient reaches the hidden
weights; only the output bias moves, to the target's mean).

The convnet is the exercise's: its conv1d pads by 1 ('same'), so the max-pool sees all 4
positions; without the padding it sees 2 and most seeds cannot fit sum(x W).

Measured (test MSE, from the store): per function and model; every convnet seed, and the
fraction of seeds that *learn* each function (``learned``, below); the zero-initialised
convnet's hidden weights after training (read from the weights artifact: still exactly zero).
Figures: train and test loss curves per function, predicted-against-true scatter plots on the
test set for the linear model, every convnet seed and the zero-initialised convnet (every test
example's prediction from the run's last prediction snapshot).

A seed learns a function when its test MSE is below ``LEARNED_VS_VARIANCE`` of the target's
variance (it does much better than predicting the mean) and within ``LEARNED_VS_BEST`` times
the best seed's test MSE (it is not stuck where the other seeds got past).
"""
from __future__ import annotations

import statistics
from pathlib import Path

import numpy as np

from ..spec import spec_data
from ..textfmt import pct
from .common import (Member, Timer, finite, fmt, last_predictions, out_dir_for, run_members, study_record,
                     weights_of)
from .options import ToyFunctionsOptions
from .record import StudyResult, Table, finish_record

__all__ = ["NAME", "DOC", "run", "FUNCTIONS", "ToyFunctionsOptions", "learned", "LEARNED_VS_VARIANCE",
           "LEARNED_VS_BEST"]

NAME = "toy-functions"
DOC = "linear model vs toy convnet on sum(xW), max(x), logsumexp(xW); convnet seeds; all-zeros init"
FUNCTIONS = {"linear": "sum(x W)", "max": "max(x)", "logsumexp": "log Σ exp(x W)"}
LEARNED_VS_VARIANCE = 0.5   # test MSE below half the target variance: far better than predicting the mean
LEARNED_VS_BEST = 2.0       # ... and within twice the best seed's test MSE: not stuck


def learned(losses: list[float | None], variance: float) -> list[bool]:
    """Per seed: did it learn the function (see the module's docstring)? A failed run did not."""
    ok = [v for v in losses if v is not None]
    best = min(ok, default=None)
    return [v is not None and v < LEARNED_VS_VARIANCE * variance and v <= LEARNED_VS_BEST * best for v in losses]


def _spec(preset: str, fn: str, *, seed: int, epochs: float, n_train: int, n_test: int,
          init: str | None = None) -> dict:
    data = spec_data(preset)
    data["name"] = f"{preset} on {fn}" + (" (zeros init)" if init == "zeros" else "")
    data["data"] = dict(data["data"], dataset=f"toy-functions/{fn}", options={"n_train": n_train, "n_test": n_test})
    data["train"] = dict(data["train"], seed=seed, epochs=epochs)
    if init:
        data["train"]["init"] = init
    return data


def run(store, options: ToyFunctionsOptions | None = None, *, quick: bool = False,
        out_dir: str | Path | None = None, workers: int = 1, ray: str | None = None) -> StudyResult:
    """Run the study; ``options`` default to ``ToyFunctionsOptions()`` (``quick``: ``.quick()``)."""
    timer = Timer()
    opts = ToyFunctionsOptions.resolve(options, quick=quick)
    common = dict(epochs=opts.epochs, n_train=opts.n_train, n_test=opts.n_test)
    members = []
    for fn in FUNCTIONS:
        members.append(Member("linear", _spec("toy-linear", fn, seed=0, **common), {"function": fn, "model": "linear"}))
        for s in range(opts.seeds):
            members.append(Member(f"convnet seed {s}", _spec("toy-convnet", fn, seed=s, **common),
                                  {"function": fn, "model": "convnet", "seed": s}))
        members.append(Member("convnet, zeros init", _spec("toy-convnet", fn, seed=0, init="zeros", **common),
                              {"function": fn, "model": "convnet-zeros"}))
    title = f"{opts.seeds} convnet seeds, {opts.epochs:g} epochs of {opts.n_train} examples"
    with study_record(store, NAME, title=title, options=opts.model_dump(), dataset="toy-functions",
                      members=members) as rid:
        run_members(store, rid, "study", members, workers=workers, ray=ray,
                    train_options={"predictions": opts.n_test})
        out = out_dir_for(out_dir, f"{NAME}-{rid}")
        result = StudyResult(kind="study", name=NAME, record_id=rid, runs=[m.run_id for m in members],
                             options=opts.model_dump(), title=f"Toy functions · {title}")
        result.numbers = _numbers(store, members, opts)
        result.tables = _tables(result.numbers, opts)
        result.figures = _figures(store, members, out)
        result.captions = {"curves": "Train and test loss (MSE, log scale) per function: linear model (blue), "
                                     "convnet from each seed (orange), convnet initialised with zeros (grey, dashed).",
                           "scatter": "Predicted against true value for every test example, one row per model and "
                                      "convnet seed; on the dashed diagonal the prediction is exact."}
        result.text = _text(result.numbers)
        result.elapsed_s = timer.s
        finish_record(store, result)
        return result


def _by(members: list[Member], fn: str, model: str) -> list[Member]:
    return [m for m in members if m.values["function"] == fn and m.values["model"] == model]


def _numbers(store, members: list[Member], opts: ToyFunctionsOptions) -> dict:
    from ..data import load_dataset
    nums: dict = {"functions": {}}
    for fn in FUNCTIONS:
        ds = load_dataset(f"toy-functions/{fn}", normalize="none",
                          options={"n_train": opts.n_train, "n_test": opts.n_test})
        conv = _by(members, fn, "convnet")
        conv_losses = [finite(m.measured.test_loss) for m in conv]
        ok = [v for v in conv_losses if v is not None]
        zeros = _by(members, fn, "convnet-zeros")[0]
        lin = _by(members, fn, "linear")[0]
        variance = float(ds.test.y.float().var(unbiased=False))
        learnt = learned(conv_losses, variance)
        nums["functions"][fn] = {
            "target_variance": variance,
            "linear": {"run_id": lin.run_id, "test_loss": finite(lin.measured.test_loss),
                       "train_loss": finite(lin.measured.train_loss), "status": lin.status},
            "convnet": {"run_ids": [m.run_id for m in conv], "test_losses": conv_losses,
                        "statuses": [m.status for m in conv], "learned": learnt,
                        "learned_fraction": sum(learnt) / len(learnt) if learnt else None,
                        "median": statistics.median(ok) if ok else None, "min": min(ok, default=None),
                        "max": max(ok, default=None), "spread": (max(ok) / min(ok)) if ok and min(ok) > 0 else None},
            "convnet_zeros": {"run_id": zeros.run_id, "test_loss": finite(zeros.measured.test_loss),
                              "status": zeros.status, **_zero_check(store, zeros.run_id)},
        }
    f = nums["functions"]
    nums["linear_loss_ratio_linear_vs_max"] = (f["linear"]["linear"]["test_loss"] / f["max"]["linear"]["test_loss"]
                                               if f["max"]["linear"]["test_loss"] else None)
    nums["convnet_learns_all_fraction"] = (sum(all(f[fn]["convnet"]["learned"][s] for fn in FUNCTIONS)
                                               for s in range(opts.seeds)) / opts.seeds)
    nums["zero_init_hidden_unchanged"] = all(f[fn]["convnet_zeros"]["hidden_weights_zero"] for fn in FUNCTIONS)
    return nums


def _zero_check(store, run_id: int) -> dict:
    """Whether the zero-initialised convnet's hidden (conv) weights are still exactly zero."""
    w = weights_of(store, run_id)
    hidden = {k: v for k, v in w.items() if k.startswith("conv")}
    return {"hidden_weights_zero": bool(hidden) and all(bool((v == 0).all()) for v in hidden.values()),
            "hidden_weight_max_abs": max(float(v.abs().max()) for v in hidden.values()) if hidden else None,
            "output_weight_max_abs": max((float(v.abs().max()) for k, v in w.items()
                                          if k.startswith("fc") and k.endswith("weight")), default=None)}


def _tables(nums: dict, opts: ToyFunctionsOptions) -> list[Table]:
    f = nums["functions"]
    cols = ["model", *[f"{FUNCTIONS[fn]}" for fn in FUNCTIONS]]
    rows = [["linear", *[fmt(f[fn]["linear"]["test_loss"]) for fn in FUNCTIONS]],
            [f"convnet, median of {opts.seeds} seeds", *[fmt(f[fn]["convnet"]["median"]) for fn in FUNCTIONS]],
            ["convnet, best seed", *[fmt(f[fn]["convnet"]["min"]) for fn in FUNCTIONS]],
            ["convnet, worst seed", *[fmt(f[fn]["convnet"]["max"]) for fn in FUNCTIONS]],
            ["convnet, all-zeros init", *[fmt(f[fn]["convnet_zeros"]["test_loss"]) for fn in FUNCTIONS]],
            ["(predicting the mean: target variance)", *[fmt(f[fn]["target_variance"]) for fn in FUNCTIONS]]]
    main = Table("Test loss (MSE) per function and model", cols, rows,
                 note="Lower is better; the last row is the loss of a constant prediction of the mean.")
    seed_rows = [[f"seed {s}", *[_seed_cell(f[fn]["convnet"], s) for fn in FUNCTIONS]] for s in range(opts.seeds)]
    seed_rows.append(["seeds that learn it", *[_fraction(f[fn]["convnet"]["learned"]) for fn in FUNCTIONS]])
    seeds = Table("Toy convnet: test loss by initialisation seed", ["seed", *cols[1:]], seed_rows,
                  note=f"Same data, same training; only the initial weights differ. ✓ learned: test MSE below "
                       f"{LEARNED_VS_VARIANCE:g} × the target variance and within {LEARNED_VS_BEST:g} × the best "
                       f"seed's.")
    zero_rows = [[FUNCTIONS[fn], "yes" if f[fn]["convnet_zeros"]["hidden_weights_zero"] else "no",
                  fmt(f[fn]["convnet_zeros"]["hidden_weight_max_abs"]), fmt(f[fn]["convnet_zeros"]["output_weight_max_abs"]),
                  fmt(f[fn]["convnet_zeros"]["test_loss"]), fmt(f[fn]["target_variance"])] for fn in FUNCTIONS]
    zeros = Table("All-zeros initialisation: nothing but the output bias learns",
                  ["function", "hidden weights still 0", "max |hidden weight|", "max |output weight|",
                   "test loss", "target variance"], zero_rows)
    return [main, seeds, zeros]


def _seed_cell(conv: dict, s: int) -> str:
    return f"{fmt(conv['test_losses'][s])} {'✓' if conv['learned'][s] else '✗'}"


def _fraction(flags: list[bool]) -> str:
    return f"{sum(flags)} of {len(flags)}"


def _figures(store, members: list[Member], out: Path) -> dict[str, Path]:
    from ..report.figures import PALETTE, curves_figure, scatter_grid_figure
    series: dict[str, dict] = {}
    metrics = []
    styles: dict[str, dict] = {}
    colours: dict[str, str] = {}
    for fn in FUNCTIONS:
        for metric, what in (("cost", "train loss"), ("test_loss", "test loss")):
            key = f"{FUNCTIONS[fn]}: {what}"
            metrics.append(key)
            for m in (x for x in members if x.values["function"] == fn):
                series.setdefault(m.label, {})[key] = [(float(e), v) for e, v in m.series.get(metric, [])]
    for m in members:
        kind = m.values["model"]
        colours[m.label] = {"linear": PALETTE[0], "convnet": PALETTE[3], "convnet-zeros": "#6e7781"}[kind]
        if kind == "convnet":
            styles[m.label] = {"linewidth": 1.0, "alpha": 0.75}
        if kind == "convnet-zeros":
            styles[m.label] = {"linestyle": "--"}
    figures = {"curves": curves_figure(series, out / "curves.png", metrics=metrics, colours=colours, styles=styles,
                                       log_y=True, title="Train and test loss (MSE) per function and model")}
    rows, row_titles = [], []
    seeds = [m.values["seed"] for m in members if m.values["model"] == "convnet" and m.values["function"] == "linear"]
    for model, seed, title in [("linear", None, "linear"), *[("convnet", s, f"convnet seed {s}") for s in seeds],
                               ("convnet-zeros", None, "convnet, zeros init")]:
        row = []
        for fn in FUNCTIONS:
            m = next(x for x in _by(members, fn, model) if seed is None or x.values["seed"] == seed)
            items = last_predictions(store, m.run_id)
            true = [float(i["target"][0]) if i.get("target") not in (None, []) else np.nan for i in items]
            pred = [_f(i["output"][0]) if i.get("output") not in (None, []) else np.nan for i in items]
            row.append({"true": true, "pred": pred, "note": f"test MSE {fmt(m.measured.test_loss, 3)}"})
        rows.append(row)
        row_titles.append(title)
    figures["scatter"] = scatter_grid_figure(rows, out / "scatter.png", row_titles=row_titles,
                                             col_titles=[FUNCTIONS[fn] for fn in FUNCTIONS],
                                             title="Predicted against true, test set")
    return figures


def _f(v) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _text(nums: dict) -> str:
    f = nums["functions"]
    lin = {fn: f[fn]["linear"]["test_loss"] for fn in FUNCTIONS}
    conv = {fn: f[fn]["convnet"]["median"] for fn in FUNCTIONS}
    return (f"The linear model fits sum(x W) almost exactly (test MSE {fmt(lin['linear'], 3)}) but not max(x) "
            f"({fmt(lin['max'], 3)}); the convnet, whose ReLU and max-pool can express a maximum, reaches a median "
            f"{fmt(conv['max'], 3)} on max(x), with test losses that vary with the seed "
            f"(max(x): {fmt(f['max']['convnet']['min'], 3)} to {fmt(f['max']['convnet']['max'], 3)}); "
            + ", ".join(f"{_fraction(f[fn]['convnet']['learned'])} seeds learn {FUNCTIONS[fn]}" for fn in FUNCTIONS)
            + f" ({pct(nums['convnet_learns_all_fraction'], 0)} of the seeds learn all three). "
            f"Initialised with zeros it learns nothing but its output bias: its hidden weights are still "
            f"{'exactly zero' if nums['zero_init_hidden_unchanged'] else 'not zero (unexpected)'} after training, "
            f"and its test loss equals the target's variance.")
