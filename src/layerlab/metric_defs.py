"""What each number on the dashboard means, in one place: the API serves it, the page shows it on hover and focus.

docs/metrics.md ("Dashboard counters") holds the same words (a test checks that every definition here is there
verbatim), so the tooltip, the docs and the values computed from ``RunResults`` cannot drift apart.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

__all__ = ["MetricDef", "DEFINITIONS", "definitions_json"]


@dataclass(frozen=True)
class MetricDef:
    key: str          # the counter (or chart) it defines; for counters, the RunResults field it shows
    label: str        # the label on the page
    definition: str   # one or two sentences, the same as docs/metrics.md


DEFINITIONS: tuple[MetricDef, ...] = (
    MetricDef("examples", "Examples trained",
              "Training examples seen so far, repeats over epochs counted."),
    MetricDef("elapsed_s", "Elapsed",
              "Wall time of the run so far, evaluation points included."),
    MetricDef("examples_per_sec", "Examples / sec",
              "The run's average training throughput: examples trained divided by the seconds spent training so far "
              "(evaluation points not counted). Live, it is the running average; at the end, the run's result."),
    MetricDef("inferences_per_sec_b1", "Inferences / sec",
              "The Model Builder's definition: one test example per call (batch 1), each call waited for; calls per "
              "second of the final model, measured once at the end."),
    MetricDef("inferences_per_sec", "Batched inferences / sec",
              "Up to 10,000 test examples through the final model in batches (the batch size is named beside it); "
              "examples per second, measured once at the end."),
    MetricDef("latency_ms_b1", "Latency (batch 1)",
              "Milliseconds per call in the batch-1 measurement: 1000 divided by the inferences per second at batch 1."),
    MetricDef("test_accuracy", "Test acc. (full set)",
              "Fraction of the whole test split classified correctly: before training, at each epoch's end and at "
              "the end."),
    MetricDef("examples_per_sec_chart", "Examples / sec (chart)",
              "Each log interval's training throughput, smoothed like the Model Builder's chart: an exponential "
              "moving average, shown = 0.7 × previous + 0.3 × this interval."),
)


def definitions_json() -> list[dict]:
    """The definitions as JSON rows ``{key, label, definition}``, in the dashboard's order."""
    return [asdict(d) for d in DEFINITIONS]
