"""Time from gzipped Fashion-MNIST files to resident tensors, beside a plain NumPy read.

    .venv/bin/python benchmarks/bench_data_load.py [--repeats 7] [--dir /usr/share/datasets/fashion-mnist]

layerlab: ``load_dataset("fashion-mnist", normalize="none")`` with its in-process cache
cleared before each repeat (so: read, sha256-verify, gunzip, parse and check IDX headers,
make uint8 tensors). NumPy: ``gzip.open(...).read()`` + ``np.frombuffer`` + reshape of the
same four files, no verification. Repeats are interleaved (A, B, A, B, ...) so drift in the
machine's state hits both alike; medians are reported.
"""
from __future__ import annotations

import argparse
import gzip
import os
import statistics
import time
from pathlib import Path

import numpy as np


def numpy_read(directory: Path):
    out = []
    for split in ("train", "t10k"):
        with gzip.open(directory / f"{split}-images-idx3-ubyte.gz", "rb") as f:
            images = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
        with gzip.open(directory / f"{split}-labels-idx1-ubyte.gz", "rb") as f:
            labels = np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64)
        out += [images, labels]
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--dir", type=Path, default=Path("/usr/share/datasets/fashion-mnist"))
    args = ap.parse_args()
    os.environ["LAYERLAB_DATA"] = str(args.dir.parent)  # look there first

    import torch

    from layerlab.data import load_dataset, locate
    from layerlab.data.loaders import clear_cache

    print(f"files: {locate('fashion-mnist')}  torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {os.cpu_count()} cpus")
    t_ll, t_np, t_cached = [], [], []
    load_dataset("fashion-mnist", normalize="none")  # warm imports and the page cache
    numpy_read(args.dir)
    for _ in range(args.repeats):
        clear_cache()
        t = time.perf_counter()
        ds = load_dataset("fashion-mnist", normalize="none")
        t_ll.append(time.perf_counter() - t)
        t = time.perf_counter()
        arrays = numpy_read(args.dir)
        t_np.append(time.perf_counter() - t)
        t = time.perf_counter()
        load_dataset("fashion-mnist", normalize="none")
        t_cached.append(time.perf_counter() - t)
    assert ds.train.x.shape == arrays[0].shape and np.array_equal(ds.test.y.numpy(), arrays[3])
    ll, npy, cached = (statistics.median(v) for v in (t_ll, t_np, t_cached))
    print(f"layerlab load_dataset (cold, verified): median {ll * 1000:7.1f} ms  "
          f"(min {min(t_ll) * 1000:.1f}, max {max(t_ll) * 1000:.1f})")
    print(f"numpy gzip.open + frombuffer          : median {npy * 1000:7.1f} ms  "
          f"(min {min(t_np) * 1000:.1f}, max {max(t_np) * 1000:.1f})")
    print(f"layerlab load_dataset (in-process cache): median {cached * 1000:5.1f} ms")
    print(f"ratio layerlab/numpy: {ll / npy:.2f}x  ({args.repeats} interleaved repeats)")


if __name__ == "__main__":
    main()
