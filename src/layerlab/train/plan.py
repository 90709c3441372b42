"""The budget of a run in examples, updates, log points and evaluation points.

``train.examples`` wins over ``train.epochs`` (which may be fractional). Epochs are passes over
a fresh seeded permutation; the last batch of an epoch may be short, and the very last batch
of the run is cut so that exactly ``total_examples`` are trained.

Log points (where the loss and accuracy sums on the device are read, once) fall every
``log_every`` updates, at every evaluation and at every epoch end; evaluation points at every
multiple of ``eval_every`` examples, every epoch end and the end. All of them depend on the
spec alone, never on the clock, so the same spec, seed and device give the same metric rows.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Plan", "make_plan"]

TARGET_EVALS = 20       # evaluations per run when train.eval_every is not set
TARGET_LOG_POINTS = 200  # log points per run, within the bounds below
MIN_LOG_EVERY, MAX_LOG_EVERY = 10, 50  # reading the device costs ~40 µs: keep it under ~1% of the loop


@dataclass(frozen=True)
class Plan:
    n_train: int
    batch_size: int
    total_examples: int
    total_steps: int
    steps_per_epoch: int
    eval_every: int
    log_every: int

    def take(self, examples: int, epoch_pos: int) -> int:
        """Examples in the next batch, given those trained so far and the offset in the epoch."""
        return min(self.batch_size, self.n_train - epoch_pos, self.total_examples - examples)


def _count_steps(n: int, bs: int, total: int) -> int:
    full, rest = divmod(total, n)
    return full * math.ceil(n / bs) + math.ceil(rest / bs)


def make_plan(train, n_train: int, *, log_every: int | None = None) -> Plan:
    """The plan for a ``TrainSpec`` on a training split of ``n_train`` examples."""
    total = train.examples if train.examples is not None else max(1, round(train.epochs * n_train))
    steps = _count_steps(n_train, train.batch_size, total)
    eval_every = train.eval_every or max(1, math.ceil(total / TARGET_EVALS))
    if log_every is None:
        log_every = min(MAX_LOG_EVERY, max(MIN_LOG_EVERY, math.ceil(steps / TARGET_LOG_POINTS)))
    return Plan(n_train, train.batch_size, total, steps, math.ceil(n_train / train.batch_size),
                eval_every, max(1, int(log_every)))
