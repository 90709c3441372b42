"""Typed user-facing errors, each with the exit code and HTTP status it maps to.

User errors are not assertions (Starlette): bad input raises one of these, the CLI maps
them to exit code 2 and the API to the class's ``http_status``, and the message is shown
unchanged. The server maps by type, never by the words of a message:

====================  ======  ==============================================================
error                 status  when
====================  ======  ==============================================================
``InvalidSpec``       400     a spec (or a spec field, an override) that cannot be used
``DataUnavailable``   409     a valid spec whose data set is not on this machine
``NotFound``          404     a run, artifact, data set or preset that does not exist
``Conflict``          409     a run in the wrong state for the request (running, final...)
``StoreUnavailable``  503     the database cannot be reached or used
``DataTooLarge``      413     a data set larger than the server keeps loaded for previews
``ModelTooLarge``     413     a model too large for the server to build for predictions
``PredictionFailed``  503     the server's prediction worker died or timed out
``OutOfMemory``       507     training needed more memory than the machine could give
``DataError``         400     a data file that cannot be read or verified
``StoreError``        400     any other misuse of the store (bad name, bad status...)
``StudyFailed``       500     every member run of a sweep or study failed (exit code 1)
``ExportUnavailable`` 501     an export format whose optional packages are not installed
====================  ======  ==============================================================

``SpecError`` is the historical name of ``InvalidSpec``; both name the same class.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, replace

__all__ = ["LayerlabError", "Problem", "PROBLEM_CATEGORIES", "InvalidSpec", "SpecError", "DataError",
           "DataUnavailable", "StoreError", "NotFound", "Conflict", "StoreUnavailable", "UnknownDataset",
           "RunNotFound", "RunConflict", "ExportUnavailable", "OutOfMemory", "DataTooLarge", "ModelTooLarge", "PredictionFailed",
           "StudyFailed", "spec_error"]


class LayerlabError(Exception):
    """Base class of every error caused by the user's input or environment."""

    exit_code = 2
    http_status = 400


# What a problem is about; views group and place problems by it, never by their words.
PROBLEM_CATEGORIES = {
    "source": "the spec file or preset named cannot be read",
    "syntax": "the spec text is not valid YAML or JSON, or not a mapping",
    "field": "a field's value, type or name (data, train, a layer's parameter, an override)",
    "layer": "a layer entry that names no known kind or is not written as one",
    "shape": "a layer whose input shape its rule does not accept",
    "objective": "the model's output does not fit the task and loss",
    "optimizer": "a combination of hyper-parameters the optimiser cannot use",
    "data": "a data set that is not on this machine",
    "budget": "a model that needs more memory to train than the budget (LAYERLAB_MAX_MEMORY)",
    "advice": "valid, but probably not what was meant (a warning, never a reason to refuse)",
}


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec, said so a student can fix it.

    ``layer`` is the 0-based index in ``model`` (None when the problem is not one layer's),
    ``field`` the dotted path of the offending field, ``hint`` the proposed fix and
    ``category`` one of ``PROBLEM_CATEGORIES``. ``where`` is the one place that says where
    a problem is, for every view: ``layer 2 (fc)`` for a shape problem, else the field path.
    """

    message: str
    hint: str = ""
    layer: int | None = None
    kind: str | None = None
    field: str | None = None
    category: str = "field"
    context: str | None = None   # the job it was found in: a sweep's trial, a study's member

    def __post_init__(self):
        if self.category not in PROBLEM_CATEGORIES:
            raise ValueError(f"unknown problem category {self.category!r}")

    @property
    def where(self) -> str:
        if self.category == "shape" and self.layer is not None:
            return f"layer {self.layer + 1} ({self.kind})" if self.kind else f"layer {self.layer + 1}"
        if self.field:
            return self.field
        return f"model[{self.layer}]" if self.layer is not None else ""

    def to_dict(self) -> dict:
        return {**asdict(self), "where": self.where}

    def with_context(self, context: str) -> "Problem":
        """The same problem found inside a larger job (a sweep's trial ``lr=0.1``, a study's member)."""
        return replace(self, context=context)

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.context:
            text = f"with {self.context}: {text}"
        return f"{text} (fix: {self.hint})" if self.hint else text


class InvalidSpec(LayerlabError):
    """A spec that cannot be used; carries every problem found, not just the first.

    ``result`` is the checker's partial verdict when there is one (rows up to the break,
    warnings), so a view can still draw the table.
    """

    http_status = 400

    def __init__(self, problems: list[Problem] | Problem | str, *, result=None):
        if isinstance(problems, str):
            problems = [Problem(problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems = list(problems)
        self.result = result
        super().__init__("\n".join(str(p) for p in self.problems))


SpecError = InvalidSpec


class DataError(LayerlabError):
    """A data set that cannot be found, fetched, verified or read."""


class DataUnavailable(InvalidSpec, DataError):
    """A spec that is fine but whose data set's files are not on this machine (fetch them first)."""

    http_status = 409


def spec_error(problems: list[Problem], *, result=None) -> InvalidSpec:
    """The error for these problems: ``DataUnavailable`` when a missing data set is all that is wrong."""
    only_data = bool(problems) and all(p.category == "data" for p in problems)
    return (DataUnavailable if only_data else InvalidSpec)(problems, result=result)


class StoreError(LayerlabError):
    """A run or artifact that is missing, or a store that cannot be used."""


class DataTooLarge(LayerlabError):
    """A data set larger than the server's whole data cache: it is not kept loaded for previews."""

    http_status = 413


class ModelTooLarge(LayerlabError):
    """A model too large for the server to build in its own memory (untrained predictions, activations, exports)."""

    http_status = 413


class PredictionFailed(LayerlabError):
    """The server's prediction worker process died or did not answer in time."""

    http_status = 503


class OutOfMemory(LayerlabError):
    """Training needed more memory than the machine could give; the run is marked failed with this."""

    http_status = 507


class NotFound(LayerlabError):
    """Something named in the request does not exist."""

    http_status = 404


class Conflict(LayerlabError):
    """The request is fine but the thing it acts on is in the wrong state."""

    http_status = 409


class StoreUnavailable(StoreError):
    """The database cannot be reached or refuses the operation."""

    http_status = 503


class UnknownDataset(DataError, NotFound):
    """A data-set name that is not in the catalogue."""

    http_status = 404


class RunNotFound(StoreError, NotFound):
    """A run id (or one of its artifacts) that the store does not hold."""

    http_status = 404


class RunConflict(StoreError, Conflict):
    """A run whose status does not allow the request (resume a finished run, delete a running one)."""

    http_status = 409


class ExportUnavailable(LayerlabError):
    """An export format that needs optional packages this installation lacks (ONNX: ``layerlab[onnx]``)."""

    http_status = 501


class StudyFailed(LayerlabError):
    """Every member run of a sweep or study failed: the record is marked failed, the message names the cause."""

    exit_code = 1
    http_status = 500
