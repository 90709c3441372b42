"""The budget of a run in examples, updates, log points and evaluation points.

``train.examples`` wins over ``train.epochs`` (which may be fractional). Epochs are passes over
a fresh seeded permutation; the last batch of an epoch may be short, and the very last batch
of the run is cut so that exactly ``total_examples`` are trained.

Log points (where the loss and accuracy sums on the device are read, once) fall every
``log_every`` updates, at every evaluation and at every epoch end; evaluation points at every
multiple of ``eval_every`` examples, every epoch end and the end. Log points depend on the spec
alone, and so do evaluation points when ``train.eval_every`` is set.

When it is not, the interval comes from what evaluation costs (``adaptive_eval_every``): the
trainer times the step-0 evaluation point on the evaluation subset, and

* if the usual ~20 live evaluations cost at most ``EVAL_FREE_S`` in all, they are kept (small
  models, small test splits: nothing to save, and the interval is the spec's alone again);
* otherwise it times the updates (``log_every`` of them after the first log point) and spaces the
  live evaluations so that they cost at most ``EVAL_SHARE`` of the estimated training time:
  as many as that pays for, at most ``MAX_EVALS`` (so at least 5 whenever 5 fit), none if
  not even one fits. Those runs' evaluation points depend on the machine's speed; set
  ``train.eval_every`` for identical rows across runs.

The interval chosen is part of the run's options, saved in every checkpoint, so a resumed run
keeps it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

__all__ = ["Plan", "make_plan", "default_eval_every", "adaptive_eval_every"]

TARGET_EVALS = 20       # live evaluations per run when they are cheap (and train.eval_every is not set)
MAX_EVALS = 50          # never more, however cheap (the curve does not need them)
EVAL_SHARE = 0.10       # live evaluations may cost this share of the estimated training time...
EVAL_FREE_S = 0.5       # ...unless TARGET_EVALS of them cost at most this many seconds in all
TARGET_LOG_POINTS = 200  # log points per run, within the bounds below
MIN_LOG_EVERY, MAX_LOG_EVERY = 10, 50  # reading the device costs ~40 µs: keep it under ~1% of the loop


@dataclass(frozen=True)
class Plan:
    n_train: int
    batch_size: int
    total_examples: int
    total_steps: int
    steps_per_epoch: int
    eval_every: int | None  # examples between live evaluation points; None: not chosen yet (adaptive)
    log_every: int

    def take(self, examples: int, epoch_pos: int) -> int:
        """Examples in the next batch, given those trained so far and the offset in the epoch."""
        return min(self.batch_size, self.n_train - epoch_pos, self.total_examples - examples)

    def next_eval(self, examples: int) -> int:
        """The example count of the next live evaluation point after ``examples`` (the end at the latest)."""
        if self.eval_every is None:
            return self.total_examples
        return min(self.total_examples, (examples // self.eval_every + 1) * self.eval_every)

    def with_eval_every(self, eval_every: int) -> "Plan":
        return replace(self, eval_every=max(1, int(eval_every)))


def _count_steps(n: int, bs: int, total: int) -> int:
    full, rest = divmod(total, n)
    return full * math.ceil(n / bs) + math.ceil(rest / bs)


def default_eval_every(total_examples: int) -> int:
    """About ``TARGET_EVALS`` evaluations per run: the interval when evaluating is cheap."""
    return max(1, math.ceil(total_examples / TARGET_EVALS))


def adaptive_eval_every(plan: Plan, *, eval_point_s: float, update_s: float | None = None) -> int | None:
    """The interval (examples) for a run whose ``train.eval_every`` is not set; see the module doc.

    ``eval_point_s``: seconds one live evaluation point takes (subset evaluation, prediction
    snapshot, probes). ``update_s``: seconds per update. None when the answer needs ``update_s``
    and it is not known yet.
    """
    if TARGET_EVALS * eval_point_s <= EVAL_FREE_S:
        return default_eval_every(plan.total_examples)
    if update_s is None:
        return None
    budget = EVAL_SHARE * plan.total_steps * update_s
    points = min(MAX_EVALS, math.floor(budget / eval_point_s)) if eval_point_s > 0 else MAX_EVALS
    return max(1, math.ceil(plan.total_examples / (points + 1)))  # points + 1 intervals; 0 points: the end only


def make_plan(train, n_train: int, *, log_every: int | None = None, eval_every: int | None = None) -> Plan:
    """The plan for a ``TrainSpec`` on a training split of ``n_train`` examples.

    ``eval_every``: the interval an earlier session of the run chose (ignored when the spec sets one);
    without either, the plan's ``eval_every`` is None until ``adaptive_eval_every`` chooses it.
    """
    total = train.examples if train.examples is not None else max(1, round(train.epochs * n_train))
    steps = _count_steps(n_train, train.batch_size, total)
    every = train.eval_every or eval_every
    if log_every is None:
        log_every = min(MAX_LOG_EVERY, max(MIN_LOG_EVERY, math.ceil(steps / TARGET_LOG_POINTS)))
    return Plan(n_train, train.batch_size, total, steps, math.ceil(n_train / train.batch_size),
                every, max(1, int(log_every)))
