"""What a user waits for, whole process from start to answer: layerlab's commands against plain peers.

    .venv/bin/python benchmarks/bench_process.py [--repeats 5] [--jobs validate,fc,conv]

* **validate**: ``layerlab validate mnist-conv`` against ``python -c "import torch"`` (what
  any PyTorch script pays before its first line of work).
* **fc**, **conv**: ``layerlab train fc100-relu-fc10 | mnist-conv --dataset fashion-mnist
  --epochs 1`` (every metric recorded into a fresh SQLite store) against a plain PyTorch script
  doing the same job the way the PyTorch tutorial does: read the IDX files with gzip + NumPy,
  ``TensorDataset`` + ``DataLoader(batch_size=64, shuffle=True)``, the same model, SGD with
  lr 0.1 and momentum 0.1, one epoch, one pass over the test set at the end.

Each pair runs alternately (A, B, A, B, ...) so drift in the machine's state hits both alike;
the table gives medians, the median of the per-pair ratios, and peak resident memory from
``/usr/bin/time -v`` (GNU time; falls back to wall time only where it is missing).
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LAYERLAB = [sys.executable, "-m", "layerlab"]

PLAIN = textwrap.dedent('''
    import gzip, sys
    import numpy as np
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    def idx(path, offset):
        with gzip.open(path, "rb") as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)

    root, model_name = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    x = {s: torch.from_numpy(idx(f"{root}/{s}-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28).copy())
         for s in ("train", "t10k")}
    y = {s: torch.from_numpy(idx(f"{root}/{s}-labels-idx1-ubyte.gz", 8).astype(np.int64)) for s in ("train", "t10k")}
    norm = {s: x[s].float() / 127.5 - 1 for s in x}          # the -1..1 scaling layerlab uses
    if model_name == "fc":
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 100), nn.ReLU(), nn.Linear(100, 10))
    else:
        model = nn.Sequential(nn.Conv2d(1, 8, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
                              nn.Conv2d(8, 16, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
                              nn.Flatten(), nn.Linear(784, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.1)
    loss_fn = nn.CrossEntropyLoss()
    loader = DataLoader(TensorDataset(norm["train"], y["train"]), batch_size=64, shuffle=True)
    model.train()
    for xb, yb in loader:
        opt.zero_grad()
        loss_fn(model(xb), yb).backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        correct = sum(int((model(xb).argmax(1) == yb).sum())
                      for xb, yb in DataLoader(TensorDataset(norm["t10k"], y["t10k"]), batch_size=1000))
    print(f"test accuracy {correct / len(y['t10k']):.4f}")
''')


def timed(cmd: list[str], env: dict) -> tuple[float, float | None]:
    """(wall seconds, peak RSS in MiB or None) of one run of ``cmd``; it must succeed."""
    gnu = shutil.which("time") or "/usr/bin/time"
    wrap = [gnu, "-v", *cmd] if os.path.exists(gnu) else cmd
    t0 = time.perf_counter()
    proc = subprocess.run(wrap, capture_output=True, text=True, env=env, cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    m = re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr)
    return wall, (int(m.group(1)) / 1024 if m else None)


def jobs(data_dir: str, store_dir: Path) -> dict[str, tuple[list[str], list[str], str, str]]:
    plain = store_dir / "plain.py"
    plain.write_text(PLAIN)
    train = [*LAYERLAB, "train", "--dataset", "fashion-mnist", "--epochs", "1"]
    return {
        "validate": ([*LAYERLAB, "validate", "mnist-conv"], [sys.executable, "-c", "import torch"],
                     "layerlab validate mnist-conv", 'python -c "import torch"'),
        "fc": ([*train[:4], "fc100-relu-fc10", *train[4:], "--db", str(store_dir / "fc.db")],
               [sys.executable, str(plain), data_dir, "fc"],
               "layerlab train fc100-relu-fc10 (1 epoch)", "plain PyTorch script (DataLoader)"),
        "conv": ([*train[:4], "mnist-conv", *train[4:], "--db", str(store_dir / "conv.db")],
                 [sys.executable, str(plain), data_dir, "conv"],
                 "layerlab train mnist-conv (1 epoch)", "plain PyTorch script (DataLoader)"),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--jobs", default="validate,fc,conv")
    ap.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    args = ap.parse_args()
    env = dict(os.environ, LAYERLAB_DATA=str(Path(args.data).parent))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        table = jobs(args.data, Path(tmp))
        for name in args.jobs.split(","):
            ours, peer, ours_label, peer_label = table[name]
            a, b = [], []
            for _ in range(args.repeats):
                for db in Path(tmp).glob("*.db*"):
                    db.unlink()  # every layerlab run starts from an empty store
                a.append(timed(ours, env))
                b.append(timed(peer, env))
            ratios = [x[0] / y[0] for x, y in zip(a, b)]
            rows.append((ours_label, peer_label, statistics.median(x[0] for x in a),
                         statistics.median(y[0] for y in b), statistics.median(ratios),
                         max((x[1] or 0) for x in a), max((y[1] or 0) for y in b)))
    print(f"{args.repeats} alternating runs each; medians; ratio = median of per-pair ratios")
    print("| layerlab | peer | layerlab wall | peer wall | ratio | layerlab peak RSS | peer peak RSS |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r[0]} | {r[1]} | {r[2]:.2f} s | {r[3]:.2f} s | **{r[4]:.2f}x** | {r[5]:.0f} MiB | {r[6]:.0f} MiB |")


if __name__ == "__main__":
    main()
