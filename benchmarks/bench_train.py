"""Training throughput: layerlab's trainer against a DataLoader loop and a hand-written loop.

One process; for each configuration the contenders train the same model (same initial
weights), on the same data, with the same optimiser (SGD, lr 0.1, momentum 0.1), batch size
and number of examples, in interleaved repeats; the median of the repeats is reported.

* ``dataloader``: the PyTorch tutorial loop — ``TensorDataset`` of normalised float tensors on
  the CPU, ``DataLoader(shuffle=True)``, each batch moved to the device.
* ``resident``: a hand-written loop over the resident uint8 tensors of
  ``layerlab.data.load_dataset`` (index slices of a permutation, ``ds.prepare`` per batch);
  no metrics, no logging.
* ``resident+fused``: the same with ``SGD(fused=True)``, the optimiser kernel the trainer uses
  where torch has one; the ratio against it is the trainer's bookkeeping overhead alone.
* ``layerlab``: ``layerlab.train.train`` with everything on (loss/accuracy read at log
  points, metric rows, heartbeats and stop polling against a SQLite store in a temp dir),
  evaluating only at the start and the end (``eval_every = N``). Its rate is the trainer's
  own ``examples_per_sec``: examples / wall time of the training loop, everything in it
  counted except the evaluation points (the step-0 and final test-set passes). As a check
  from outside, the *marginal* rate (N − N/4) / (T(N) − T(N/4)) from the wall time of two
  whole ``train()`` calls of N and N/4 examples is shown beside it (fixed per-run costs —
  evaluations, inference timing, artifacts — cancel; it is noisier).

Inference: ``measure_inference`` (layerlab) against a bare ``model(x)`` loop, batched (512) and
one example at a time (100 calls).

    .venv/bin/python benchmarks/bench_train.py                 # CPU
    .venv/bin/python benchmarks/bench_train.py --device cuda   # unchanged on a GPU
"""
from __future__ import annotations

import argparse
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from layerlab.builder import build
from layerlab.data import load_dataset
from layerlab.spec import load_spec
from layerlab.store import Store
from layerlab.train import measure_inference, train

CONFIGS = [("fc100-relu-fc10", 64), ("fc100-relu-fc10", 512), ("mnist-conv", 64)]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_spec(preset: str, bs: int, examples: int, device: str):
    return load_spec(preset, overrides=[f"train.batch_size={bs}", f"train.examples={examples}",
                                        f"train.eval_every={examples}", f"train.device={device}"])


def make_model(spec, device, fused: bool = False):
    model = build(spec).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.1, **({"fused": True} if fused else {}))
    return model, opt


def run_resident(spec, ds, examples: int, device, fused: bool = False) -> float:
    model, opt = make_model(spec, device, fused)
    X, Y, bs = ds.train.x, ds.train.y, spec.train.batch_size
    gen = torch.Generator().manual_seed(0)
    sync(device)
    t0 = time.perf_counter()
    done = 0
    while done < examples:
        perm = torch.randperm(len(X), generator=gen).to(device)
        for i in range(0, min(len(X), examples - done), bs):
            idx = perm[i:i + bs]
            x, y = ds.prepare(X[idx]), Y[idx]
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += len(idx)
    sync(device)
    return done / (time.perf_counter() - t0)


def run_dataloader(spec, tensors: TensorDataset, examples: int, device) -> float:
    model, opt = make_model(spec, device)
    loader = DataLoader(tensors, batch_size=spec.train.batch_size, shuffle=True,
                        generator=torch.Generator().manual_seed(0))
    sync(device)
    t0 = time.perf_counter()
    done = 0
    while done < examples:
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            done += len(y)
            if done >= examples:
                break
    sync(device)
    return done / (time.perf_counter() - t0)


def run_layerlab(preset, bs, ds, examples: int, device, store) -> tuple[float, float]:
    """(marginal examples/s measured from outside, the trainer's own examples_per_sec)."""
    times, own = {}, None
    for n in (examples // 4, examples):
        spec = make_spec(preset, bs, n, str(device))
        t0 = time.perf_counter()
        results = train(spec, store=store, data=ds, device=device)
        times[n] = time.perf_counter() - t0
        own = results.examples_per_sec
    short, full = examples // 4, examples
    return (full - short) / (times[full] - times[short]), own


def bare_inference(model, ds, device, batch_size=512, calls=100) -> tuple[float, float]:
    n = min(len(ds.test), 10000)
    x = ds.prepare(ds.test.x[:n])
    model.eval()
    with torch.no_grad():
        model(x[:batch_size])
        sync(device)
        t0 = time.perf_counter()
        for i in range(0, n, batch_size):
            model(x[i:i + batch_size])
        sync(device)
        batched = n / (time.perf_counter() - t0)
        singles = [x[i:i + 1] for i in range(calls)]
        for xi in singles[:10]:
            model(xi)
        sync(device)
        t0 = time.perf_counter()
        for xi in singles:
            model(xi)
            sync(device)
        single = calls / (time.perf_counter() - t0)
    return batched, single


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--examples", type=int, default=20000, help="examples per measurement")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=None, help="torch.set_num_threads for all contenders")
    ap.add_argument("--configs", default=None, help="e.g. fc100-relu-fc10:64,mnist-conv:64")
    args = ap.parse_args()
    device = torch.device(args.device)
    if args.threads:
        torch.set_num_threads(args.threads)
    configs = CONFIGS if not args.configs else [(c.split(":")[0], int(c.split(":")[1])) for c in args.configs.split(",")]
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, device {device}, "
          f"threads {torch.get_num_threads()}, {args.examples} examples per measurement, median of {args.repeats}")
    # Training: a 1,000-example test split keeps the trainer's fixed per-run costs (two evaluations,
    # inference timing) small; inference is measured on the full 10,000-example test split.
    ds = load_dataset("fashion-mnist", device=device, train_size=args.examples, test_size=1000)
    ds_inference = load_dataset("fashion-mnist", device=device, train_size=1000)
    tensors = TensorDataset(ds.prepare(ds.train.x).cpu(), ds.train.y.cpu())
    tmp = tempfile.mkdtemp()
    store = Store(Path(tmp) / "bench.db")

    # warm-up (allocator, kernels, lazy imports)
    spec = make_spec("fc100-relu-fc10", 64, 2000, str(device))
    run_resident(spec, ds, 2000, device)
    run_dataloader(spec, tensors, 2000, device)
    train(spec, store=store, data=ds, device=device)

    print(f"\n| model | batch | DataLoader ex/s | resident ex/s | resident+fused ex/s | layerlab ex/s | "
          f"layerlab marginal | vs DataLoader | vs resident | vs resident+fused |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for preset, bs in configs:
        spec = make_spec(preset, bs, args.examples, str(device))
        got = {"dataloader": [], "resident": [], "fused": [], "layerlab": [], "own": []}
        for _ in range(args.repeats):
            got["dataloader"].append(run_dataloader(spec, tensors, args.examples, device))
            got["resident"].append(run_resident(spec, ds, args.examples, device))
            got["fused"].append(run_resident(spec, ds, args.examples, device, fused=True))
            marginal, own = run_layerlab(preset, bs, ds, args.examples, device, store)
            got["layerlab"].append(marginal)
            got["own"].append(own)
        med = {k: statistics.median(v) for k, v in got.items()}

        def ratio(other: str) -> str:  # median of the per-repeat ratios (interleaved), then from outside
            own = statistics.median(a / b for a, b in zip(got["own"], got[other]))
            marginal = statistics.median(a / b for a, b in zip(got["layerlab"], got[other]))
            return f"{own:.2f}x ({marginal:.2f}x)"

        print(f"| {preset} | {bs} | {med['dataloader']:,.0f} | {med['resident']:,.0f} | {med['fused']:,.0f} | "
              f"{med['own']:,.0f} | {med['layerlab']:,.0f} | {ratio('dataloader')} | {ratio('resident')} | "
              f"{ratio('fused')} |", flush=True)

    print("\n| model | layerlab inf/s batched | bare inf/s batched | ratio | layerlab inf/s batch 1 | "
          "bare inf/s batch 1 | ratio |")
    print("|---|---|---|---|---|---|---|")
    for preset in dict.fromkeys(p for p, _ in configs):
        model = build(make_spec(preset, 64, 1000, str(device))).to(device)
        ll, bare = [], []
        for _ in range(args.repeats):
            m = measure_inference(model, ds_inference)
            ll.append((m["inferences_per_sec"], m["inferences_per_sec_b1"]))
            bare.append(bare_inference(model, ds_inference, device))
        lb, l1 = (statistics.median(v[i] for v in ll) for i in range(2))
        bb, b1 = (statistics.median(v[i] for v in bare) for i in range(2))
        print(f"| {preset} | {lb:,.0f} | {bb:,.0f} | {lb / bb:.2f} | {l1:,.0f} | {b1:,.0f} | {l1 / b1:.2f} |")


if __name__ == "__main__":
    main()
