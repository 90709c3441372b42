"""Studies: programs over the one path (spec -> train -> store) that answer a question.

* ``sweep``: a base spec with fields varied over a grid or at random, each trial a run
  (executed inline, in a local process pool, or on Ray);
* ``lr_find``: the learning-rate range test;
* the named studies in ``STUDIES`` (``layerlab study NAME``): ``toy-functions``,
  ``classifiers``, ``capacity``, ``autoencoder-pca``, ``init``.

Each returns a ``StudyResult`` (numbers, tables, figure paths) and is recorded in the store
as a *record run* with its members tagged (see ``record``), so ``layerlab report`` finds it.
A named study's knobs are a typed options class (``Study.options``, see ``options``):
``run_study("classifiers", store, ClassifiersOptions.quick(dataset="mnist"))``.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from ..errors import LayerlabError

__all__ = ["STUDIES", "Study", "get_study", "run_study", "sweep", "lr_find", "StudyResult", "Table",
           "StudyOptions", "ToyFunctionsOptions", "ClassifiersOptions", "CapacityOptions", "AutoencoderPcaOptions",
           "InitOptions"]

from .options import (AutoencoderPcaOptions, CapacityOptions, ClassifiersOptions, InitOptions,  # noqa: E402
                      StudyOptions, ToyFunctionsOptions)  # light: pydantic, no torch
from .record import StudyResult, Table  # noqa: E402  (light: no torch)


@dataclass(frozen=True)
class Study:
    name: str
    module: str      # module under layerlab.studies with NAME, DOC, run(store, options, *, quick, out_dir, workers, ray)
    doc: str
    options: type[StudyOptions]   # the study's knobs: options() is the full study, options.quick() the reduced one

    def load(self):
        return importlib.import_module(f".{self.module}", __name__)


STUDIES: dict[str, Study] = {s.name: s for s in (
    Study("toy-functions", "toy_functions",
          "linear model vs toy convnet on sum(xW), max(x), logsumexp(xW); convnet seeds; all-zeros init",
          ToyFunctionsOptions),
    Study("classifiers", "classifiers", "linear vs MLP vs convnet on Fashion-MNIST (or MNIST), SGD+momentum vs Adam",
          ClassifiersOptions),
    Study("capacity", "capacity",
          "1-5 FC layers, wide-then-narrow vs narrow-then-wide, fc10 vs fc100 first layer; train/test gap",
          CapacityOptions),
    Study("autoencoder-pca", "autoencoder_pca",
          "2-unit autoencoder vs 2-component PCA: codes by class, reconstruction error, k-NN separability",
          AutoencoderPcaOptions),
    Study("init", "init_study",
          "zeros, normal, Xavier, He on the same MLP: loss curves and per-layer gradient norms over the first steps",
          InitOptions),
)}


def get_study(name: str) -> Study:
    try:
        return STUDIES[name]
    except KeyError:
        import difflib
        close = difflib.get_close_matches(name, list(STUDIES), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise LayerlabError(f"unknown study {name!r}; {hint}known studies: {', '.join(STUDIES)}") from None


def run_study(name: str, store, options: StudyOptions | None = None, **kwargs) -> StudyResult:
    """Run study ``name`` with ``options`` (its ``Study.options``; default: the full form, or with
    ``quick=True`` the reduced one); ``kwargs``: quick, out_dir, workers, ray."""
    return get_study(name).load().run(store, options, **kwargs)


def sweep(*args, **kwargs) -> StudyResult:
    from .sweep import sweep as _sweep
    return _sweep(*args, **kwargs)


def lr_find(*args, **kwargs) -> StudyResult:
    from .lr_find import lr_find as _lr_find
    return _lr_find(*args, **kwargs)
