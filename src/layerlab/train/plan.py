"""The budget of a run in examples, updates, log points and evaluation points.

``train.examples`` wins over ``train.epochs`` (which may be fractional). Epochs are passes over
a fresh seeded permutation; the last batch of an epoch may be short, and the very last batch
of the run is cut so that exactly ``total_examples`` are trained.

A time budget (``train.minutes``) also wins over ``train.epochs``; with ``train.examples`` the run
ends at whichever comes first. The trainer checks the clock (wall time, evaluations included)
after every update, so a timed run ends within one update of its limit, then evaluates as at
any end. A run with only a time budget (``by_time``) has no length in examples until its
updates are timed: ``total_examples`` is then just the cap ``MAX_EXAMPLES``, its log points fall
every ``MIN_LOG_EVERY`` updates, and its evaluation interval is chosen (as below) from
``estimated``: the examples the time pays for at the measured speed.

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

from ..spec import MAX_EXAMPLES  # the cap of a run budgeted by time alone

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
    seconds: float | None = None  # the time budget (train.minutes x 60); None: examples/epochs only
    by_time: bool = False         # only the time budget decides the length (total_examples is just a cap)

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

    def estimated(self, update_s: float) -> "Plan":
        """A ``by_time`` plan with the length its time pays for at ``update_s`` seconds per update (less
        the ``EVAL_SHARE`` live evaluations may take); any other plan as it is."""
        if not self.by_time:
            return self
        updates = max(1, math.floor(self.seconds * (1 - EVAL_SHARE) / max(update_s, 1e-9)))
        total = min(self.total_examples, updates * self.batch_size)
        return replace(self, total_examples=total, total_steps=_count_steps(self.n_train, self.batch_size, total),
                       by_time=False)


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
    and it is not known yet (always, for a ``by_time`` plan: its length comes from ``update_s``).
    """
    if plan.by_time:
        if update_s is None:
            return None
        plan = plan.estimated(update_s)
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
    minutes = getattr(train, "minutes", None)
    by_time = minutes is not None and train.examples is None
    if train.examples is not None:
        total = train.examples
    elif by_time:
        total = MAX_EXAMPLES  # a cap: the clock ends the run
    else:
        total = max(1, round(train.epochs * n_train))
    steps = _count_steps(n_train, train.batch_size, total)
    every = train.eval_every or eval_every
    if log_every is None:
        log_every = MIN_LOG_EVERY if by_time else \
            min(MAX_LOG_EVERY, max(MIN_LOG_EVERY, math.ceil(steps / TARGET_LOG_POINTS)))
    return Plan(n_train, train.batch_size, total, steps, math.ceil(n_train / train.batch_size),
                every, max(1, int(log_every)), seconds=None if minutes is None else 60.0 * minutes, by_time=by_time)
