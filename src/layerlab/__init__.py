"""layerlab: a lab bench for small neural networks.

Build a model from layers, see whether its shapes flow (and if not, which layer breaks and
how to fix it), train it, and compare runs.
"""
from .build import build
from .errors import DataError, LayerlabError, Problem, SpecError, StoreError
from .shapes import CheckResult, check
from .spec import Spec, load_spec

__version__ = "0.1.0"

__all__ = ["build", "check", "load_spec", "Spec", "CheckResult", "Problem",
           "LayerlabError", "SpecError", "DataError", "StoreError", "__version__"]
