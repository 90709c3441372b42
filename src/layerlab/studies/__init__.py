"""Studies: programs over the one path (spec -> train -> store) that answer a question.

* ``sweep``: a base spec with fields varied over a grid or at random, each trial a run
  (executed inline, in a local process pool, or on Ray);
* ``lr_find``: the learning-rate range test;
* the named studies in ``STUDIES`` (``layerlab study NAME``): ``toy-functions``,
  ``classifiers``, ``capacity``, ``autoencoder-pca``, ``init``.

Each returns a ``StudyResult`` (numbers, tables, figure paths) and is recorded in the store
as a *record run* with its members tagged (see ``record``), so ``layerlab report`` finds it.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass

from ..errors import LayerlabError

__all__ = ["STUDIES", "Study", "get_study", "run_study", "sweep", "lr_find", "StudyResult", "Table"]

from .record import StudyResult, Table  # noqa: E402  (light: no torch)


@dataclass(frozen=True)
class Study:
    name: str
    module: str      # module under layerlab.studies with NAME, DOC, run(store, *, quick, out_dir, workers, ray, ...)
    doc: str

    def load(self):
        return importlib.import_module(f".{self.module}", __name__)


STUDIES: dict[str, Study] = {s.name: s for s in (
    Study("toy-functions", "toy_functions",
          "linear model vs toy convnet on sum(xW), max(x), logsumexp(xW); convnet seeds; all-zeros init"),
    Study("classifiers", "classifiers", "linear vs MLP vs convnet on Fashion-MNIST (or MNIST), SGD+momentum vs Adam"),
    Study("capacity", "capacity",
          "1-5 FC layers, wide-then-narrow vs narrow-then-wide, fc10 vs fc100 first layer; train/test gap"),
    Study("autoencoder-pca", "autoencoder_pca",
          "2-unit autoencoder vs 2-component PCA: codes by class, reconstruction error, k-NN separability"),
    Study("init", "init_study",
          "zeros, normal, Xavier, He on the same MLP: loss curves and per-layer gradient norms over the first steps"),
)}


def get_study(name: str) -> Study:
    try:
        return STUDIES[name]
    except KeyError:
        import difflib
        close = difflib.get_close_matches(name, list(STUDIES), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        raise LayerlabError(f"unknown study {name!r}; {hint}known studies: {', '.join(STUDIES)}") from None


def run_study(name: str, store, **options) -> StudyResult:
    """Run study ``name`` (options: quick, out_dir, workers, ray and the study's own knobs)."""
    return get_study(name).load().run(store, **options)


def sweep(*args, **kwargs) -> StudyResult:
    from .sweep import sweep as _sweep
    return _sweep(*args, **kwargs)


def lr_find(*args, **kwargs) -> StudyResult:
    from .lr_find import lr_find as _lr_find
    return _lr_find(*args, **kwargs)
