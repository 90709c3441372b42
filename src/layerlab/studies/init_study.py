"""The initialisation study: zeros, normal, Xavier and He on the same MLP.

Model: ``mnist-fc`` (fc128-relu-fc32-relu-fc10) with the Model Builder's training settings,
once per initialiser (``train.init``): ``zeros``, ``normal`` (N(0, 0.05²), Keras'
RandomNormal), ``xavier_uniform`` and ``he_normal``. Each is a normal run through ``train``
(its loss curves come from the store).

Per-layer gradient norms over the *first* updates: the trainer records ``grad_norm/<layer>``
only at its evaluation points (about 20 per run), too coarse for the first steps. So the
study replays the first ``steps`` updates itself with the trainer's parts — ``build`` (same
initialiser and seed), ``make_optimizer`` (same optimiser), the spec's loss, and the same
data order (the trainer's seeded permutation) — and records the norm of each layer's
gradient (weight and bias together) before every update. They are stored on the study's
record run as the metric series ``grad_norm/<init>/<layer>`` (step = update number).

Zero init: every hidden unit outputs 0, so no weight gets a gradient; the hidden weights are
checked (from the stored final weights) to be still exactly zero.
"""
from __future__ import annotations

import time
from pathlib import Path

from ..spec import resolve_objective, spec_data
from ..textfmt import pct
from .common import (Member, Timer, finite, fmt, out_dir_for, run_members, study_record,
                     weights_of)
from .options import InitOptions
from .record import StudyResult, Table, finish_record

__all__ = ["NAME", "DOC", "run", "INITS", "first_step_grad_norms", "InitOptions"]

NAME = "init"
DOC = "zeros, normal, Xavier, He on the same MLP: loss curves and per-layer gradient norms over the first steps"
INITS = {"zeros": "zeros", "normal": {"normal": {"std": 0.05}}, "xavier": "xavier_uniform", "he": "he_normal"}


def first_step_grad_norms(spec, steps: int, data=None) -> dict[str, list[float]]:
    """``{layer: [gradient norm before update 1, 2, ...]}`` for the first ``steps`` updates of ``spec``."""
    import torch
    from ..builder import build
    from ..train import make_objective, make_optimizer
    from ..train.diagnose import layer_modules
    data = data if data is not None else spec.data.load()
    task, loss = resolve_objective(spec.train, data.info)
    objective = make_objective(task, loss, num_classes=data.info.num_classes,
                               last_layer=spec.model[-1].kind if spec.model else None)
    model = build(spec)
    model.train()
    opt = make_optimizer(model.parameters(), spec.train)
    gen = torch.Generator().manual_seed(spec.train.seed)  # the trainer's data order
    n, bs = len(data.train), spec.train.batch_size
    perm, pos = torch.randperm(n, generator=gen), 0
    weighted = [(name, mod) for name, mod in layer_modules(model) if list(mod.parameters())]
    norms: dict[str, list[float]] = {name: [] for name, _ in weighted}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(spec.train.seed)
        for _ in range(steps):
            if pos >= n:
                perm, pos = torch.randperm(n, generator=gen), 0
            idx = perm[pos:pos + bs]
            pos += len(idx)
            x = data.prepare(data.train.x[idx])
            out = objective(model(x), objective.target(x, data.train.y[idx]))
            opt.zero_grad(set_to_none=False)
            out.backward()
            values = torch.stack([torch.linalg.vector_norm(torch.stack(
                [torch.linalg.vector_norm(p.grad) for p in mod.parameters()])) for _, mod in weighted]).tolist()
            for (name, _), v in zip(weighted, values):
                norms[name].append(v)
            opt.step()
    return norms


def run(store, options: InitOptions | None = None, *, quick: bool = False,
        out_dir: str | Path | None = None, workers: int = 1, ray: str | None = None) -> StudyResult:
    """Run the study; ``options`` default to ``InitOptions()`` (``quick``: ``.quick()``)."""
    timer = Timer()
    opts = InitOptions.resolve(options, quick=quick)
    members = []
    for label, init in INITS.items():
        data = spec_data(opts.preset)
        data["name"] = f"{opts.preset} · init {label}"
        data["data"] = dict(data["data"], dataset=opts.dataset, train_size=opts.train_size,
                            test_size=opts.test_size)
        data["train"] = dict(data["train"], init=init, epochs=opts.epochs, seed=0)
        members.append(Member(label, data, {"init": label}))
    size = "all" if opts.train_size is None else f"{opts.train_size:,}"
    title = f"{opts.preset} on {opts.dataset}, {size} training examples, {opts.epochs:g} epoch(s)"
    with study_record(store, NAME, title=title, options=opts.model_dump(), dataset=opts.dataset,
                      members=members) as rid:
        run_members(store, rid, "study", members, workers=workers, ray=ray)
        out = out_dir_for(out_dir, f"{NAME}-{rid}")
        spec0 = members[0].prepared.spec
        data = members[0].prepared.load_data()
        grad_norms, rows_metrics = {}, []
        wall = time.time()
        for m in members:
            norms = first_step_grad_norms(m.prepared.spec, opts.steps, data=data)
            grad_norms[m.label] = norms
            for layer, values in norms.items():
                rows_metrics += [(f"grad_norm/{m.label}/{layer}", i + 1, (i + 1) * spec0.train.batch_size, wall, v)
                                 for i, v in enumerate(values)]
        store.add_metrics(rid, rows_metrics)
        runs = []
        for m in members:
            w = weights_of(store, m.run_id)
            fcs = sorted({k.split(".")[0] for k in w if k.startswith("fc")}, key=lambda s: int(s[2:]))
            hidden = fcs[:-1]
            hidden_zero = all(bool((w[f"{h}.weight"] == 0).all()) for h in hidden)
            first = {layer: v[0] for layer, v in grad_norms[m.label].items()}
            last = {layer: v[-1] for layer, v in grad_norms[m.label].items()}
            res = m.measured
            runs.append({"run_id": m.run_id, "init": m.label, "status": m.status,
                         "test_accuracy": finite(res.test_accuracy), "test_loss": finite(res.test_loss),
                         "train_loss": finite(res.train_loss), "step0_test_loss": finite(res.step0_test_loss),
                         "hidden_weights_zero": hidden_zero, "grad_norm_first": first, "grad_norm_last": last})
        layers = list(next(iter(grad_norms.values())))
        result = StudyResult(kind="study", name=NAME, record_id=rid, runs=[m.run_id for m in members],
                             options=opts.model_dump(), title=f"Initialisation · {title}")
        result.numbers = {"runs": runs, "zero_init_hidden_unchanged": next(r for r in runs if r["init"] == "zeros")
                          ["hidden_weights_zero"], "steps": opts.steps}
        result.tables = [
            Table("Result per initialiser", ["run", "init", "loss at step 0", "final train loss", "final test loss",
                                             "test acc", "hidden weights all 0", "status"],
                  [[r["run_id"], r["init"], fmt(r["step0_test_loss"]), fmt(r["train_loss"]), fmt(r["test_loss"]),
                    pct(r["test_accuracy"]), "yes" if r["hidden_weights_zero"] else "no", r["status"]]
                   for r in runs]),
            Table(f"Gradient norm per layer at update 1 → update {opts.steps}", ["init", *layers],
                  [[r["init"], *[f"{fmt(r['grad_norm_first'][l], 3)} → {fmt(r['grad_norm_last'][l], 3)}"
                                 for l in layers]] for r in runs],
                  note="Norm of the layer's whole gradient (weights and bias), replayed by the study over the first "
                       "updates with the run's initialiser, optimiser, seed and data order."),
        ]
        from ..report.figures import curves_figure, grad_norms_figure
        series = {m.label: {k: [(float(e), v) for e, v in m.series.get(k, [])]
                            for k in ("cost", "test_loss", "test_accuracy")} for m in members}
        result.figures = {
            "curves": curves_figure(series, out / "curves.png", metrics=["cost", "test_loss", "test_accuracy"],
                                    cols=3, title="Loss and accuracy per initialiser"),
            "grad_norms": grad_norms_figure(grad_norms, out / "grad_norms.png",
                                            title=f"Per-layer gradient norms over the first {opts.steps} updates"),
        }
        result.captions = {"curves": "Train loss, test loss and test accuracy for each initialiser.",
                           "grad_norms": "Norm of each layer's gradient (weights and bias) at each of the first "
                                         "updates (log scale); with all-zeros init the hidden layers get none."}
        best = max(runs, key=lambda r: r["test_accuracy"] or -1)
        z = next(r for r in runs if r["init"] == "zeros")
        result.text = (f"Best: {best['init']} ({pct(best['test_accuracy'])} test accuracy). All-zeros: test "
                       f"accuracy {pct(z['test_accuracy'])}, hidden weights "
                       f"{'still exactly zero' if z['hidden_weights_zero'] else 'changed (unexpected)'} after training. "
                       + "; ".join(f"{r['init']} {pct(r['test_accuracy'])}" for r in runs) + ".")
        result.elapsed_s = timer.s
        finish_record(store, result)
        return result
