"""Generated data sets: the toy functions and TensorFlow-Playground-style 2-D sets.

All generators use NumPy's ``default_rng`` and draw train and test from separate streams
(seeded ``[seed, 0]`` and ``[seed, 1]``), so changing ``n_test`` never changes the training
examples. For the toy functions the first ``n`` training inputs are also the same for any
``n_train >= n``.
"""
from __future__ import annotations

import math

import numpy as np

from .options import OPTION_RULES, check_options

__all__ = ["OPTION_RULES", "check_options", "toy_weights", "toy_inputs", "toy_targets",
           "make_toy_functions", "PLAYGROUND", "make_playground"]

# --- toy functions -------------------------------------------------------------------------

TOY_LOW, TOY_HIGH = -2.5, 2.5
TOY_TARGETS = ("linear", "max", "logsumexp")


def toy_weights(w_seed: int = 0) -> np.ndarray:
    """W, the fixed random 4x4 matrix of the linear and log-sum-exp targets (float64)."""
    return np.random.default_rng(w_seed).standard_normal((4, 4))


def toy_inputs(n: int, seed) -> np.ndarray:
    """(n, 4) float64 inputs uniform in [-2.5, 2.5]; ``seed`` is anything default_rng takes."""
    return np.random.default_rng(seed).uniform(TOY_LOW, TOY_HIGH, size=(n, 4))


def toy_targets(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Noiseless targets (n, 3): sum(x W), max(x), log(sum(exp(x W)))."""
    xw = x @ w  # (n, 4)
    m = xw.max(-1, keepdims=True)
    lse = (m + np.log(np.exp(xw - m).sum(-1, keepdims=True)))[:, 0]
    return np.stack([xw.sum(-1), x.max(-1), lse], axis=-1)


def make_toy_functions(target: str | None, opts: dict) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test) as float32; y is (n, 3) or (n, 1) for one target."""
    w = toy_weights(opts["w_seed"])
    out = []
    for n, stream in ((opts["n_train"], 0), (opts["n_test"], 1)):
        x = toy_inputs(n, [opts["seed"], stream])
        y = toy_targets(x, w)
        if opts["noise"]:
            noise_rng = np.random.default_rng([opts["seed"], stream, 1])
            y = y * (1.0 + opts["noise"] * noise_rng.standard_normal(y.shape))
        if target is not None:
            y = y[:, [TOY_TARGETS.index(target)]]  # (n, 1)
        out += [x.astype(np.float32), y.astype(np.float32)]
    return tuple(out)


# --- TensorFlow Playground 2-D sets (after playground's src/dataset.ts) ----------------------

def _circle(n, noise, rng):
    radius = 5.0
    pts, labels = [], []
    for lo, hi in ((0.0, radius * 0.5), (radius * 0.7, radius)):  # inside: positive; ring: negative
        k = n // 2 if lo == 0.0 else n - n // 2
        r = rng.uniform(lo, hi, k)
        angle = rng.uniform(0, 2 * math.pi, k)
        p = np.stack([r * np.sin(angle), r * np.cos(angle)], -1)  # (k, 2)
        jitter = rng.uniform(-radius, radius, (k, 2)) * noise
        labels.append(np.hypot(*(p + jitter).T) < radius * 0.5)
        pts.append(p)
    return np.concatenate(pts), np.concatenate(labels)


def _xor(n, noise, rng):
    padding = 0.3
    p = rng.uniform(-5, 5, (n, 2))
    p += np.where(p > 0, padding, -padding)
    q = p + rng.uniform(-5, 5, (n, 2)) * noise
    return p, q[:, 0] * q[:, 1] >= 0


def _gauss(n, noise, rng):
    variance = 0.5 + noise * 7.0  # playground: linear scale [0, 0.5] -> [0.5, 4]
    k = n // 2
    pos = rng.normal((2, 2), math.sqrt(variance), (k, 2))
    neg = rng.normal((-2, -2), math.sqrt(variance), (n - k, 2))
    return np.concatenate([pos, neg]), np.arange(n) < k


def _spiral(n, noise, rng):
    pts, labels = [], []
    for delta, positive, k in ((0.0, True, n // 2), (math.pi, False, n - n // 2)):
        i = np.arange(k) / k
        r = i * 5
        t = 1.75 * i * 2 * math.pi + delta
        p = np.stack([r * np.sin(t), r * np.cos(t)], -1) + rng.uniform(-1, 1, (k, 2)) * noise
        pts.append(p)
        labels.append(np.full(k, positive))
    return np.concatenate(pts), np.concatenate(labels)


def _plane(n, noise, rng):
    radius = 6.0
    p = rng.uniform(-radius, radius, (n, 2))
    q = p + rng.uniform(-radius, radius, (n, 2)) * noise
    return p, (q[:, 0] + q[:, 1]) / 10.0  # playground: linear scale [-10, 10] -> [-1, 1], unclamped


_BUMPS = np.array([[-4, 2.5, 1], [0, 2.5, -1], [4, 2.5, 1],
                   [-4, -2.5, -1], [0, -2.5, 1], [4, -2.5, -1]], dtype=float)


def _multi_gauss(n, noise, rng):
    radius = 6.0
    p = rng.uniform(-radius, radius, (n, 2))
    q = p + rng.uniform(-radius, radius, (n, 2)) * noise
    d = np.hypot(q[:, None, 0] - _BUMPS[:, 0], q[:, None, 1] - _BUMPS[:, 1])  # (n, 6)
    v = _BUMPS[:, 2] * np.clip(1 - d / 2, 0, 1)  # playground: scale [0, 2] -> [1, 0], clamped
    pick = np.abs(v).argmax(-1)  # the bump with the largest magnitude wins
    return p, v[np.arange(n), pick]


PLAYGROUND = {"circle": _circle, "xor": _xor, "gauss": _gauss, "spiral": _spiral,
              "plane": _plane, "multi-gauss": _multi_gauss}


def make_playground(name: str, opts: dict, *, classification: bool) -> tuple[np.ndarray, ...]:
    """(x_train, y_train, x_test, y_test): x float32 (n, 2); y int64 (n,) or float32 (n, 1)."""
    out = []
    for n, stream in ((opts["n_train"], 0), (opts["n_test"], 1)):
        rng = np.random.default_rng([opts["seed"], stream])
        x, y = PLAYGROUND[name](n, opts["noise"], rng)
        order = rng.permutation(n)  # the generators emit one class after the other
        x, y = x[order], y[order]
        y = y.astype(np.int64) if classification else y.astype(np.float32)[:, None]
        out += [x.astype(np.float32), y]
    return tuple(out)
