"""The knobs of each named study, typed: one pydantic model per study, with its reduced (``--quick``) form.

One definition feeds the study (``run(store, options)``), the CLI (``--opt KEY=VALUE`` is
validated here, a bad or unknown option named with its fix, exit 2), the listing of
``layerlab study`` and the record (``options.model_dump()`` is stored as its options).
``XOptions()`` is the full-size study, ``XOptions.quick()`` the reduced form the tests and CI
run; either takes changes: ``ClassifiersOptions.quick(dataset="mnist")``.

Light on purpose (pydantic, no torch): the registry and the CLI import it to list and check
options before a study module, torch or the store is touched.
"""
from __future__ import annotations

from typing import Any, ClassVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import InvalidSpec, LayerlabError, Problem
from ..spec import load_yaml_value
from ..params import problems_from_validation

__all__ = ["StudyOptions", "ToyFunctionsOptions", "ClassifiersOptions", "CapacityOptions",
           "AutoencoderPcaOptions", "InitOptions", "options_from_cli", "describe_field"]

DATASET_DOC = "the data set every member trains on (a 10-class image set: fashion-mnist, mnist, ...)"
TRAIN_SIZE_DOC = "train on the first N training examples (seeded order); null: all of them"
TEST_SIZE_DOC = "test on the first N test examples; null: all of them"


class StudyOptions(BaseModel):
    """Base of the studies' options: unknown keys are refused, values are checked, instances are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    QUICK: ClassVar[dict[str, Any]] = {}   # what the reduced form changes

    @classmethod
    def quick(cls, **changes: Any):
        """The reduced form (small subsets, few epochs), with ``changes`` on top."""
        return cls(**{**cls.QUICK, **changes})

    @classmethod
    def resolve(cls, options: "StudyOptions | None", *, quick: bool = False):
        """What a study's ``run`` uses: ``options``, or by default the full (``quick``: the reduced) form."""
        if options is None:
            return cls.quick() if quick else cls()
        if not isinstance(options, cls):
            raise LayerlabError(f"this study takes {cls.__name__}, not {type(options).__name__}")
        return options


class ToyFunctionsOptions(StudyOptions):
    seeds: int = Field(5, ge=1, description="initialisation seeds of the toy convnet (0, 1, ...)")
    epochs: float = Field(50, gt=0, description="passes over the generated training set, for every run")
    n_train: int = Field(1000, ge=1, description="generated training examples per function")
    n_test: int = Field(200, ge=1, description="generated test examples per function (all get a prediction)")

    QUICK: ClassVar[dict[str, Any]] = {"seeds": 3, "epochs": 30}


class ClassifiersOptions(StudyOptions):
    dataset: str = Field("fashion-mnist", min_length=1, description=DATASET_DOC)
    epochs: float = Field(3, gt=0, description="passes over the training set, for every model and optimiser")
    train_size: int | None = Field(None, ge=1, description=TRAIN_SIZE_DOC)
    test_size: int | None = Field(None, ge=1, description=TEST_SIZE_DOC)
    batch_size: int = Field(64, ge=1, description="examples per update, for every run")

    QUICK: ClassVar[dict[str, Any]] = {"epochs": 1, "train_size": 2000, "test_size": 500}


class CapacityOptions(StudyOptions):
    dataset: str = Field("fashion-mnist", min_length=1, description=DATASET_DOC)
    train_size: int = Field(2000, ge=1, description="training examples: a small subset, so that the bigger "
                                                    "models can memorise it")
    test_size: int | None = Field(5000, ge=1, description=TEST_SIZE_DOC)
    epochs: float = Field(30, gt=0, description="passes over the training subset (many: capacity shows as "
                                                "overfitting)")
    width: int = Field(100, ge=1, description="units of each hidden layer of the 1-5 layer models")

    QUICK: ClassVar[dict[str, Any]] = {"train_size": 500, "test_size": 500, "epochs": 8}


class AutoencoderPcaOptions(StudyOptions):
    dataset: str = Field("fashion-mnist", min_length=1, description=DATASET_DOC)
    train_size: int | None = Field(None, ge=1, description=TRAIN_SIZE_DOC + " (PCA is fitted on the same)")
    test_size: int | None = Field(None, ge=1, description=TEST_SIZE_DOC)
    epochs: float = Field(5, gt=0, description="passes of the autoencoder over the training set")
    k: int = Field(5, ge=1, description="neighbours of the k-NN classifier that measures separability")
    show: int = Field(10, ge=1, description="test images in the reconstructions figure")

    QUICK: ClassVar[dict[str, Any]] = {"train_size": 2000, "test_size": 500, "epochs": 3, "show": 8}


class InitOptions(StudyOptions):
    dataset: str = Field("fashion-mnist", min_length=1, description=DATASET_DOC)
    preset: str = Field("mnist-fc", min_length=1, description="the model: a preset of fc layers, trained once "
                                                             "per initialiser")
    train_size: int | None = Field(None, ge=1, description=TRAIN_SIZE_DOC)
    test_size: int | None = Field(None, ge=1, description=TEST_SIZE_DOC)
    epochs: float = Field(1, gt=0, description="passes over the training set, for every initialiser")
    steps: int = Field(100, ge=1, description="first updates replayed to record per-layer gradient norms")

    QUICK: ClassVar[dict[str, Any]] = {"train_size": 2000, "test_size": 500, "steps": 30}


def options_from_cli(cls: type[StudyOptions], items: list[str], *, quick: bool = False) -> StudyOptions:
    """``--opt KEY=VALUE`` items (values read as YAML) over the full or the quick form; InvalidSpec if bad.

    Every problem is reported at once, each naming ``opt.KEY`` with a fix.
    """
    base = cls.quick() if quick else cls()
    values, problems = {}, []
    for item in items:
        key, sep, raw = (s.strip() for s in item.partition("="))
        if not sep or not key:
            problems.append(Problem(f"{item!r} is not KEY=VALUE", hint="write it as --opt KEY=VALUE, "
                                    f"e.g. --opt {next(iter(cls.model_fields))}=...", field="opt"))
            continue
        try:
            values[key] = load_yaml_value(raw) if raw else None  # under the spec limits
        except yaml.YAMLError:
            values[key] = raw  # not YAML: the text itself
    try:
        options = cls(**{**base.model_dump(), **values})
    except ValidationError as exc:
        problems += problems_from_validation(exc, prefix=("opt",), known=list(cls.model_fields),
                                             defaults=base.model_dump())
    if problems:
        raise InvalidSpec(problems)
    return options


def describe_field(cls: type[StudyOptions], name: str) -> str:
    """``float > 0``, ``int >= 1 or null``: the type and range of one option, for listings."""
    f = cls.model_fields[name]
    text = {int: "int", float: "number", str: "text"}
    args = getattr(f.annotation, "__args__", (f.annotation,))
    kinds = [text.get(a, getattr(a, "__name__", str(a))) for a in args if a is not type(None)]
    bounds = []
    for m in f.metadata:
        for attr, op in (("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")):
            if getattr(m, attr, None) is not None:
                bounds.append(f"{op} {getattr(m, attr)}")
    out = " ".join([" | ".join(kinds), *bounds])
    return out + (" or null" if type(None) in args else "")
