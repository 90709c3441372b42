"""The generated data sets' options and their one check, apart from the generators so that
``layerlab validate`` checks a spec's data options without importing numpy."""
from __future__ import annotations

from ..errors import DataError

__all__ = ["OPTION_RULES", "check_options"]

# option -> (type, low, high, meaning); the one table that produces every option message.
OPTION_RULES: dict[str, tuple[type, float, float, str]] = {
    "noise": (float, 0.0, 1.0, "noise level (toy functions: std of the multiplicative noise; "
                               "playground: fraction of the domain, the Playground's slider / 100)"),
    "n_train": (int, 1, 1_000_000, "number of generated training examples"),
    "n_test": (int, 1, 1_000_000, "number of generated test examples"),
    "seed": (int, 0, 2**63 - 1, "seed of the generated examples"),
    "w_seed": (int, 0, 2**63 - 1, "seed of the 4x4 weight matrix W"),
}


def check_options(name: str, defaults: dict, options: dict | None) -> dict:
    """``defaults`` updated by ``options``, each checked against OPTION_RULES."""
    merged = dict(defaults)
    for key, value in (options or {}).items():
        if key not in defaults:
            takes = ", ".join(sorted(defaults)) if defaults else "none"
            raise DataError(f"unknown option {key!r} for data set {name!r}; it takes: {takes}")
        typ, lo, hi, meaning = OPTION_RULES[key]
        ok_type = (isinstance(value, (int, float)) and not isinstance(value, bool)
                   and (typ is float or float(value).is_integer()))
        if not ok_type or not lo <= value <= hi:
            kind = "a float" if typ is float else "an integer"
            raise DataError(f"The {key!r} option of {name} must be {kind} in the range "
                            f"[{lo:g}, {hi:g}] ({meaning}). Got {value!r} instead.")
        merged[key] = typ(value)
    return merged
