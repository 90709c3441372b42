"""Learning-rate schedules, resolved by name: the learning rate as a pure function of the step.

Every schedule is computed per update from the run's budget, so a resumed run picks up the
same curve without saved scheduler state. ``step`` counts updates from 0 (the first update
uses ``lr_at(..., step=0)``); ``total_steps`` is the whole budget in updates; ``epoch`` is the
training progress before the update in (fractional) epochs, examples / training-set size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

__all__ = ["Schedule", "SCHEDULES", "lr_at", "lr_curve"]


@dataclass(frozen=True)
class Schedule:
    name: str
    doc: str
    # (base_lr, step, total_steps, epoch, params) -> lr
    fn: Callable[[float, int, int, float, dict], float]


def _constant(lr: float, step: int, total: int, epoch: float, p: dict) -> float:
    return lr


def _step(lr: float, step: int, total: int, epoch: float, p: dict) -> float:
    # Drop by step_gamma every step_epochs epochs (fractional epochs allowed).
    drops = math.floor(epoch / p["step_epochs"] + 1e-9)
    return lr * p["step_gamma"] ** drops


def _cosine(lr: float, step: int, total: int, epoch: float, p: dict) -> float:
    # Half a cosine from lr at step 0 to 0 after the last update.
    return 0.5 * lr * (1.0 + math.cos(math.pi * min(step, total) / max(1, total)))


_WARMUP, _DIV, _FINAL_DIV = 0.3, 25.0, 1e4  # torch's OneCycleLR defaults


def _one_cycle(lr: float, step: int, total: int, epoch: float, p: dict) -> float:
    # Cosine warm-up from lr/25 to lr over the first 30% of updates, then cosine down to lr/25e4.
    start, end = lr / _DIV, lr / (_DIV * _FINAL_DIV)
    up = max(1, round(_WARMUP * total))
    if step < up:
        t = step / up
        return start + (lr - start) * 0.5 * (1.0 - math.cos(math.pi * t))
    t = min(1.0, (step - up) / max(1, total - up))
    return end + (lr - end) * 0.5 * (1.0 + math.cos(math.pi * t))


SCHEDULES: dict[str, Schedule] = {s.name: s for s in (
    Schedule("constant", "The same learning rate for every update.", _constant),
    Schedule("step", "Multiply the learning rate by step_gamma every step_epochs epochs.", _step),
    Schedule("cosine", "Cosine decay from lr to 0 over the budget.", _cosine),
    Schedule("one-cycle", "Warm up from lr/25 to lr over 30% of the budget, then anneal to lr/250000 "
             "(Smith's one-cycle, as torch's OneCycleLR; momentum is not cycled).", _one_cycle),
)}


def lr_at(name: str, lr: float, step: int, *, total_steps: int, epoch: float,
          step_epochs: float = 1.0, step_gamma: float = 0.1) -> float:
    """The learning rate of update ``step`` (0-based), made after ``epoch`` epochs, under ``name``."""
    return SCHEDULES[name].fn(lr, step, total_steps, epoch, {"step_epochs": step_epochs, "step_gamma": step_gamma})


def lr_curve(name: str, lr: float, *, total_steps: int, steps_per_epoch: float, **params) -> list[float]:
    """The learning rate of every update of a run with full batches (for plots and tests)."""
    return [lr_at(name, lr, s, total_steps=total_steps, epoch=s / steps_per_epoch, **params)
            for s in range(total_steps)]
