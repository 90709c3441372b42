"""``RunResults``: what one training run ends with, as ``train()`` returns it and the store keeps it.

One typed field per number, each defined once (docs/metrics.md, "Run results", says the same
in prose). The trainer builds it at the end of a run (finished, stopped or diverged), stores
``to_json()`` with ``Store.set_results`` and returns the object; every view (CLI, API, report,
studies) reads ``RunResults.from_json(run["results"])`` and picks attributes, never keys.

The JSON form is plain JSON data with every field present (null where a run has no value);
NaN and infinities stay floats (the store round-trips them; ``print_json`` and the API write
them as ``"NaN"``/``"Infinity"`` strings). ``from_json`` reads what any store holds: a key an
older store lacks reads as None (an empty list for ``history`` and ``diagnoses``), keys it no
longer knows are ignored, and the strings ``"NaN"``/``"Infinity"``/``"-Infinity"`` in a number
field (or a history row) read back as floats.

This module imports nothing of torch (only ``layerlab.train``'s package init does), so that
reading results never needs the engine.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field
from typing import Any, TypedDict

from .outcome import Outcome, outcome

__all__ = ["RunResults", "HistoryRow", "Confusion", "WorstExample", "Diagnosis", "SUBSET_SERIES", "curve_series"]

# The live curve of each full-test-split metric: the same quantity at every evaluation point, on the
# evaluation subset (docs/metrics.md). The full-split series has rows at step 0, epoch ends and the end only.
SUBSET_SERIES = {"test_accuracy": "test_accuracy_subset", "test_loss": "test_loss_subset"}


def curve_series(store, run_id: int, name: str) -> list[tuple[int, float]]:
    """``store.series(run_id, name)`` for plotting a curve: ``test_accuracy`` and ``test_loss`` read their
    subset series (every evaluation point), or, for runs stored before it existed, the full-split one."""
    live = SUBSET_SERIES.get(name)
    return (store.series(run_id, live) if live else None) or store.series(run_id, name)


class HistoryRow(TypedDict):
    """One epoch: train values over the whole epoch, test values from the evaluation at its end."""

    epoch: float                      # epochs done at this row (fractional for a partial last epoch)
    examples: int
    step: int
    partial: bool                     # True: a fractional last epoch (or the epoch a stop cut short)
    train_loss: float
    train_accuracy: float | None      # None unless the task is classification
    test_loss: float
    test_accuracy: float | None


class Confusion(TypedDict):
    classes: list[str]
    matrix: list[list[int]]           # matrix[i][j]: test examples of true class i predicted as j


class WorstExample(TypedDict):
    index: int                        # position in the test split
    label: int
    predicted: int
    p_true: Any                       # probability of the true class: a float, or "NaN" for a diverged model


class Diagnosis(TypedDict):
    kind: str                         # zero_init, zero_gradients, dead_relu, loss_spike, flat_loss, diverged
    text: str
    step: int


_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def _number(v: Any) -> Any:
    """The JSON-safe strings back to floats ("NaN" -> nan); anything else unchanged."""
    return _NON_FINITE.get(v, v) if isinstance(v, str) else v


@dataclass(kw_only=True)
class RunResults:
    """The results of one run. Test values are on the whole test split (or ``data.test_size``'s subset),
    never on the evaluation subset that live evaluation points use."""

    # ---------------------------------------------------------------- the run
    run_id: int | None = None                   # the run in the store; None when trained without a store
    status: str                                 # finished | stopped | diverged
    device: str                                 # where it trained: "cpu", "cuda", "cuda:1"
    task: str                                   # classification | regression | reconstruction
    loss: str                                   # cross_entropy | mse | bce
    params: int                                 # trainable parameters of the model

    # ---------------------------------------------------------------- budget and time
    examples: int                               # training examples seen (repeats over epochs counted)
    steps: int                                  # updates done
    epochs: float                               # examples / training-set size
    total_examples: int                         # the budget: examples the run was planned to train (a time
    #                                             budget alone: the examples its time paid for)
    minutes: float | None = None                # the time budget (train.minutes); None without one
    elapsed_s: float                            # wall seconds, evaluations included; a resumed run adds its
    #                                             earlier sessions up to their last checkpoint
    train_time_s: float                         # seconds of training only (no evaluation points), all sessions
    examples_per_sec: float | None = None       # examples / train_time_s; None when nothing was trained
    eval_time_s: float | None = None            # seconds in evaluation points (test passes, prediction
    #                                             snapshots, probes), all sessions; part of elapsed_s
    eval_subset: int | None = None              # test examples at live evaluation points (the whole split's
    #                                             size with eval_subset: all, or when the subset would be as big)
    eval_every: int | None = None               # training examples between live evaluation points: the spec's
    #                                             or the one chosen from the measured costs; None if never chosen

    # ---------------------------------------------------------------- accuracy and loss (test split)
    test_examples: int | None = None            # examples in the test split the test values are on
    test_split_size: int | None = None          # examples in the data set's whole test split; more than
    #                                             test_examples when data.test_size took a subset
    step0_test_accuracy: float | None = None    # the untrained model's (about 1 / classes); None unless
    #                                             classification
    step0_test_loss: float | None = None        # the untrained model's mean per-example loss
    test_accuracy: float | None = None          # the final model's (a diverged run: the broken model's);
    #                                             None unless classification
    test_loss: float | None = None              # the final model's mean per-example loss
    best_test_accuracy: float | None = None     # the highest test accuracy of any full-split evaluation point
    #                                             after step 0 (the untrained model never counts)
    train_loss: float | None = None             # the last epoch row's train loss (mean over the epoch, each
    #                                             batch before its update); before the first epoch ends, the
    #                                             last log point's cost
    train_accuracy: float | None = None         # the same row's (or log point's); None unless classification
    history: list[HistoryRow] = field(default_factory=list)  # one row per epoch

    # ---------------------------------------------------------------- why it ended
    stop_reason: str | None = None              # a stopped run: "stop event" or "stop requested in the store";
    #                                             a run its time budget ended: "time budget"
    diagnosis: str | None = None                # diverged: the explanation; else every not-learning finding
    #                                             joined by "; "; None when there is none
    diagnoses: list[Diagnosis] = field(default_factory=list)  # each finding with its kind and step
    diverged_at_step: int | None = None         # diverged: the update whose loss was NaN, infinite or exploded
    #                                             (with on_divergence: continue, the first such update)
    evidence: list[dict] | None = None          # diverged: the last (up to 16) replayed updates, {step, lr,
    #                                             loss, logits_absmax, grad_norm, layer_grad_norms, weight_norm}

    # ---------------------------------------------------------------- classification (final model, test split)
    confusion: Confusion | None = None          # true class against predicted class, counted
    worst: list[WorstExample] | None = None     # the 10 examples with the lowest probability of their class

    # ---------------------------------------------------------------- inference speed (final model, test split)
    inferences_per_sec: float | None = None     # batched: up to 10,000 examples in batches of 512, about 0.3 s
    inferences_per_sec_b1: float | None = None  # one example per call, up to 100 calls (about 0.3 s), each waited for
    latency_ms_b1: float | None = None          # milliseconds per call at batch 1 (1000 / inferences_per_sec_b1)
    inference_batch_size: int | None = None     # the batch size of inferences_per_sec (512)

    # ---------------------------------------------------------------- the verdict (computed, never stored input)
    outcome: Outcome | None = None              # did it learn? {kind, label, text}: train/outcome.py, one definition

    def __post_init__(self) -> None:
        self.outcome = outcome(self)

    # ---------------------------------------------------------------- JSON

    def to_json(self) -> dict:
        """Plain JSON data, every field present (NaN and infinities stay floats)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict | None) -> "RunResults | None":
        """The results a store holds (None for none); see the module doc for older stores."""
        if not isinstance(data, dict):
            return None
        values = {}
        for f in dataclasses.fields(cls):
            v = data.get(f.name)
            if f.name in _NUMBER_FIELDS:
                v = _number(v)
            elif f.name == "history":
                v = [{k: _number(x) for k, x in row.items()} if isinstance(row, dict) else row for row in v or []]
            elif f.name == "diagnoses":
                v = list(v or [])
            values[f.name] = v
        return cls(**values)


def _is_number_type(hint: Any) -> bool:
    args = typing.get_args(hint) or (hint,)
    return any(a in (float, int) for a in args)


_NUMBER_FIELDS = frozenset(name for name, hint in typing.get_type_hints(RunResults).items() if _is_number_type(hint))
