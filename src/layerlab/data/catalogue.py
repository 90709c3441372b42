"""The data-set catalogue: what each data set is, without loading it.

The shape checker, the CLI and the UI read these entries to know a data set's input shape,
number of classes and task before (or without) touching any file. Loaders live beside
this module (``loaders.py``) and are looked up by the entry's ``loader`` name.

Checksums: ``SourceFile.sha256`` is the published hash of the canonical (usually gzipped)
file, as listed by tensorflow_datasets' ``url_checksums``. Redistributors sometimes
recompress (Debian's ``dataset-fashion-mnist`` does), so ``content_sha256`` is the hash of
the *decompressed* bytes; a file verifies when either matches. ``content_sha256`` is None
where no trusted value is known (MNIST), and then only the canonical gz file verifies by
hash; a decompressed copy is still checked structurally (IDX header against file size).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import UnknownDataset

__all__ = ["DatasetInfo", "SourceFile", "DATASETS", "get_info", "dataset_names"]

Task = str  # "classification" | "regression"


@dataclass(frozen=True)
class SourceFile:
    """One file of a data set's canonical distribution."""

    name: str
    sha256: str  # of the file as distributed (the .gz), published upstream
    size: int | None = None  # bytes of the file as distributed
    content_sha256: str | None = None  # of the decompressed bytes (for recompressed copies)
    content_size: int | None = None  # bytes once decompressed


@dataclass(frozen=True)
class DatasetInfo:
    """A data set's static description.

    Shapes are PyTorch's, without the batch dimension: images are (channels, height, width),
    vectors are (features,). ``num_classes`` is None for regression sets, whose targets have
    ``target_shape``.
    """

    name: str
    input_shape: tuple[int, ...]
    task: Task
    num_classes: int | None = None
    target_shape: tuple[int, ...] = ()
    class_names: tuple[str, ...] = ()
    doc: str = ""
    citation: str = ""
    files: tuple[SourceFile, ...] = ()
    mirrors: tuple[str, ...] = ()
    train_size: int | None = None
    test_size: int | None = None
    pixel_range: tuple[float, float] | None = None
    # Knobs ``load_dataset(options=...)`` accepts, with their defaults; anything else is an error.
    options: dict = field(default_factory=dict)
    # Name in ``loaders.LOADERS``: "idx", "cifar10-binary", "digits", "toy-functions", "playground".
    loader: str = ""
    # Names of the regression targets, one per entry of ``target_shape`` (last axis).
    target_names: tuple[str, ...] = ()
    # Where the examples come from: "files" (fetched/located), "bundled" or "generated".
    source: str = "files"

    @property
    def output_size(self) -> int:
        """Values the model's last layer must produce for this data set's labels."""
        if self.task == "classification":
            return int(self.num_classes)
        size = 1
        for d in self.target_shape:
            size *= d
        return size


_DIGITS = tuple(str(i) for i in range(10))
_FASHION = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
            "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
_CIFAR = ("airplane", "automobile", "bird", "cat", "deer",
          "dog", "frog", "horse", "ship", "truck")

_TOY_FUNCTION_OPTIONS = {"noise": 0.01, "n_train": 1000, "n_test": 200, "seed": 0, "w_seed": 0}
_PLAYGROUND_OPTIONS = {"noise": 0.0, "n_train": 250, "n_test": 250, "seed": 0}
_PLAYGROUND_CITATION = ("D. Smilkov, S. Carter. TensorFlow Playground, "
                        "https://playground.tensorflow.org (dataset.ts), 2016.")

_entries = [
    DatasetInfo(
        name="mnist", input_shape=(1, 28, 28), task="classification", num_classes=10,
        class_names=_DIGITS, train_size=60000, test_size=10000, pixel_range=(0, 255),
        doc="Handwritten digits 0-9, 28x28 greyscale.",
        citation="Y. LeCun, C. Cortes, C. J. C. Burges. The MNIST database of handwritten digits.",
        files=(
            SourceFile("train-images-idx3-ubyte.gz", "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609", 9912422, None, 47040016),
            SourceFile("train-labels-idx1-ubyte.gz", "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c", 28881, None, 60008),
            SourceFile("t10k-images-idx3-ubyte.gz", "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6", 1648877, None, 7840016),
            SourceFile("t10k-labels-idx1-ubyte.gz", "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6", 4542, None, 10008),
        ),
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/",
                 "https://storage.googleapis.com/cvdf-datasets/mnist/"),
        loader="idx",
    ),
    DatasetInfo(
        name="fashion-mnist", input_shape=(1, 28, 28), task="classification", num_classes=10,
        class_names=_FASHION, train_size=60000, test_size=10000, pixel_range=(0, 255),
        doc="Zalando's article images in 10 classes, 28x28 greyscale; a harder drop-in for MNIST.",
        citation="H. Xiao, K. Rasul, R. Vollgraf. Fashion-MNIST: a Novel Image Dataset for "
                 "Benchmarking Machine Learning Algorithms. arXiv:1708.07747, 2017.",
        # content_sha256: decompressed bytes, computed from Debian's dataset-fashion-mnist
        # (whose .gz files are recompressed, so their gz hashes differ from upstream's).
        files=(
            SourceFile("train-images-idx3-ubyte.gz", "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880,
                       "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888", 47040016),
            SourceFile("train-labels-idx1-ubyte.gz", "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515,
                       "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9", 60008),
            SourceFile("t10k-images-idx3-ubyte.gz", "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102,
                       "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b", 7840016),
            SourceFile("t10k-labels-idx1-ubyte.gz", "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148,
                       "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34", 10008),
        ),
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        loader="idx",
    ),
    DatasetInfo(
        name="cifar10", input_shape=(3, 32, 32), task="classification", num_classes=10,
        class_names=_CIFAR, train_size=50000, test_size=10000, pixel_range=(0, 255),
        doc="Small colour photographs of 10 object classes, 32x32x3 (binary distribution).",
        citation="A. Krizhevsky. Learning Multiple Layers of Features from Tiny Images. 2009.",
        files=(
            SourceFile("cifar-10-binary.tar.gz", "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd", 170052171),
        ),
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
        loader="cifar10-binary",
    ),
    DatasetInfo(
        name="digits", input_shape=(1, 8, 8), task="classification", num_classes=10,
        class_names=_DIGITS, train_size=1438, test_size=359, pixel_range=(0, 16),
        doc="scikit-learn's 8x8 handwritten digits (1,797 images), available offline; "
            "split 1438/359 by a permutation seeded with 0.",
        citation="E. Alpaydin, C. Kaynak. Optical Recognition of Handwritten Digits. UCI, 1998.",
        loader="digits", source="bundled",
    ),
    DatasetInfo(
        name="toy-functions", input_shape=(4,), task="regression", target_shape=(3,),
        train_size=1000, test_size=200, target_names=("linear", "max", "logsumexp"),
        doc="4-value inputs in [-2.5, 2.5]; targets sum(xW), max(x), log(sum(exp(xW))) with 1% noise.",
        citation="layerlab toy-function study (W: 4x4 standard normal from numpy seed w_seed).",
        options=dict(_TOY_FUNCTION_OPTIONS), loader="toy-functions", source="generated",
    ),
]
for _target, _doc in (("linear", "sum(x W)"), ("max", "max(x)"), ("logsumexp", "log(sum(exp(x W)))")):
    _entries.append(DatasetInfo(
        name=f"toy-functions/{_target}", input_shape=(4,), task="regression", target_shape=(1,),
        train_size=1000, test_size=200, target_names=(_target,),
        doc=f"The toy-function task with the single target {_doc}.",
        citation="layerlab toy-function study (W: 4x4 standard normal from numpy seed w_seed).",
        options=dict(_TOY_FUNCTION_OPTIONS), loader="toy-functions", source="generated",
    ))
for _name, _doc in (("circle", "a disc of one class inside a ring of the other"),
                    ("xor", "the four quadrants, labelled by the sign of x*y"),
                    ("gauss", "two Gaussian blobs"),
                    ("spiral", "two interleaved spirals")):
    _entries.append(DatasetInfo(
        name=_name, input_shape=(2,), task="classification", num_classes=2,
        class_names=("negative", "positive"), train_size=250, test_size=250,
        doc=f"2-D toy classification (TensorFlow Playground style): {_doc}.",
        citation=_PLAYGROUND_CITATION,
        options=dict(_PLAYGROUND_OPTIONS), loader="playground", source="generated",
    ))
for _name, _doc in (("plane", "a tilted plane"), ("multi-gauss", "a sum of Gaussian bumps")):
    _entries.append(DatasetInfo(
        name=_name, input_shape=(2,), task="regression", target_shape=(1,),
        train_size=250, test_size=250, target_names=("y",),
        doc=f"2-D toy regression (TensorFlow Playground style): {_doc}.",
        citation=_PLAYGROUND_CITATION,
        options=dict(_PLAYGROUND_OPTIONS), loader="playground", source="generated",
    ))

DATASETS: dict[str, DatasetInfo] = {e.name: e for e in _entries}


def dataset_names() -> list[str]:
    return list(DATASETS)


def get_info(name: str) -> DatasetInfo:
    """The catalogue entry for ``name``; an UnknownDataset (a DataError) listing the known names otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise UnknownDataset(
            f"unknown data set {name!r}; known data sets: {', '.join(DATASETS)}"
        ) from None
