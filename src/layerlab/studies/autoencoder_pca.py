"""Autoencoder vs PCA: does a 2-unit bottleneck separate the classes better than 2 principal components?

The autoencoder is the preset ``autoencoder`` (784-512-128-2-128-512-784, sigmoid output, MSE,
Adam), trained through ``train`` into the store; its encoder (every layer up to and including
the 2-unit ``fc``) is rebuilt from the stored weights. PCA is scikit-learn's, fitted on the
same training images (scaled to 0..1 and flattened, exactly what the autoencoder sees).

Measured, on the test set:

* reconstruction error of each: mean squared error per pixel (the autoencoder's is its test
  loss; PCA's is of ``inverse_transform(transform(x))``);
* separability: accuracy of a k-nearest-neighbour classifier (k = 5) fitted on the *training*
  codes and scored on the *test* codes, each code dimension standardised with the training
  codes' mean and std first (so neither method wins by its scale). A number in [0, 1]; the
  chance level is 1 / classes.

Figures: the test codes of both side by side, coloured by class; originals and both
reconstructions of the same test examples; the separability and reconstruction numbers as bars.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from ..spec import spec_data
from ..textfmt import pct
from .common import Member, Timer, finite, fmt, out_dir_for, run_members, study_record, \
    trained_model
from .options import AutoencoderPcaOptions
from .record import StudyResult, Table, finish_record

__all__ = ["NAME", "DOC", "run", "knn_accuracy", "AutoencoderPcaOptions"]

NAME = "autoencoder-pca"
DOC = "2-unit autoencoder vs 2-component PCA: codes by class, reconstruction error, k-NN separability"


def knn_accuracy(train_codes: np.ndarray, train_y: np.ndarray, test_codes: np.ndarray, test_y: np.ndarray, *,
                 k: int = 5) -> float:
    """k-NN accuracy on standardised codes: fitted on the train codes, scored on the test codes."""
    from sklearn.neighbors import KNeighborsClassifier
    mean, std = train_codes.mean(0), train_codes.std(0)
    std = np.where(std > 0, std, 1.0)
    clf = KNeighborsClassifier(n_neighbors=k).fit((train_codes - mean) / std, train_y)
    return float(clf.score((test_codes - mean) / std, test_y))


def _encoder(model, spec):
    """The layers up to and including the narrowest fc (the bottleneck)."""
    import torch
    fcs = [i for i, layer in enumerate(spec.model) if layer.kind == "fc"]
    bottleneck = min(fcs[:-1] or fcs, key=lambda i: spec.model[i].params["units"])
    return torch.nn.Sequential(*list(model.children())[:bottleneck + 1]), spec.model[bottleneck].params["units"]


def run(store, options: AutoencoderPcaOptions | None = None, *, quick: bool = False,
        out_dir: str | Path | None = None, workers: int = 1, ray: str | None = None) -> StudyResult:
    """Run the study; ``options`` default to ``AutoencoderPcaOptions()`` (``quick``: ``.quick()``)."""
    import torch
    from sklearn.decomposition import PCA
    timer = Timer()
    opts = AutoencoderPcaOptions.resolve(options, quick=quick)
    data = spec_data("autoencoder")
    data["data"] = dict(data["data"], dataset=opts.dataset, train_size=opts.train_size,
                        test_size=opts.test_size)
    data["train"] = dict(data["train"], epochs=opts.epochs, seed=0)
    member = Member("autoencoder", data, {"model": "autoencoder"})
    size = "all" if opts.train_size is None else f"{opts.train_size:,}"
    title = f"{opts.dataset}, {size} training examples, {opts.epochs:g} epochs"
    with study_record(store, NAME, title=title, options=opts.model_dump(), dataset=opts.dataset,
                      members=[member]) as rid:
        run_members(store, rid, "study", [member], workers=workers, ray=ray)
        out = out_dir_for(out_dir, f"{NAME}-{rid}")
        if member.status != "finished":
            raise RuntimeError(f"the autoencoder run {member.run_id} ended {member.status}: "
                               f"{member.diagnosis or member.error}")
        spec, model = trained_model(store, member.run_id)
        ds = spec.data.load()
        encoder, width = _encoder(model, spec)
        names = list(ds.info.class_names) or [str(i) for i in range(ds.info.num_classes or 0)]

        def prepared(split) -> torch.Tensor:
            return torch.cat([ds.prepare(split.x[i:i + 4096]) for i in range(0, len(split), 4096)])

        x_train, x_test = prepared(ds.train), prepared(ds.test)  # (N, 1, 28, 28) in 0..1
        y_train, y_test = ds.train.y.numpy(), ds.test.y.numpy()
        with torch.no_grad():
            ae_train = encoder(x_train).numpy()
            ae_test = encoder(x_test).numpy()
            ae_recon = model(x_test).reshape(len(x_test), -1).numpy()
        flat_train = x_train.reshape(len(x_train), -1).numpy()  # (N, 784)
        flat_test = x_test.reshape(len(x_test), -1).numpy()
        pca = PCA(n_components=width, random_state=0).fit(flat_train)
        pca_train, pca_test = pca.transform(flat_train), pca.transform(flat_test)
        pca_recon = pca.inverse_transform(pca_test)
        ae_mse = float(((ae_recon - flat_test) ** 2).mean())
        pca_mse = float(((pca_recon - flat_test) ** 2).mean())
        knn_ae = knn_accuracy(ae_train, y_train, ae_test, y_test, k=opts.k)
        knn_pca = knn_accuracy(pca_train, y_train, pca_test, y_test, k=opts.k)
        numbers = {"run_id": member.run_id, "bottleneck": width,
                   "autoencoder": {"reconstruction_mse": ae_mse, "knn_accuracy": knn_ae,
                                   "test_loss": finite(member.measured.test_loss)},
                   "pca": {"reconstruction_mse": pca_mse, "knn_accuracy": knn_pca,
                           "explained_variance": float(pca.explained_variance_ratio_.sum())},
                   "chance": 1.0 / max(1, len(names)), "k": opts.k,
                   "autoencoder_separates_better": knn_ae > knn_pca,
                   "train_examples": len(x_train), "test_examples": len(x_test)}
        result = StudyResult(kind="study", name=NAME, record_id=rid, runs=[member.run_id],
                             options=opts.model_dump(), numbers=numbers, title=f"Autoencoder vs PCA · {title}")
        result.tables = [Table(f"{width}-D codes: reconstruction and separability",
                               ["method", "reconstruction MSE (per pixel)", f"{opts.k}-NN accuracy on test codes",
                                "note"],
                               [["autoencoder", fmt(ae_mse), pct(knn_ae), f"run {member.run_id}"],
                                [f"PCA ({width} components)", fmt(pca_mse), pct(knn_pca),
                                 f"explains {pct(numbers['pca']['explained_variance'])} of the variance"],
                                ["chance", "—", pct(numbers["chance"]), ""]],
                               note="k-NN fitted on the training codes (standardised), scored on the test codes.")]
        from ..report.figures import bars_figure, codes_figure, reconstructions_figure
        side = int(round(flat_test.shape[1] ** 0.5))
        n = min(opts.show, len(flat_test))
        shape = (n, side, side) if side * side == flat_test.shape[1] else None
        result.figures = {
            "codes": codes_figure([(f"autoencoder ({opts.k}-NN accuracy {pct(knn_ae)})", ae_test),
                                   (f"PCA ({opts.k}-NN accuracy {pct(knn_pca)})", pca_test)],
                                  y_test, names, out / "codes.png", title="Test set in two dimensions"),
            "separability": bars_figure(["k-NN accuracy on 2-D codes", "reconstruction MSE × 10"],
                                        {"autoencoder": [knn_ae, ae_mse * 10], "PCA": [knn_pca, pca_mse * 10]},
                                        out / "separability.png", ylabel="value", ylim=(0, 1.05),
                                        title="Separability (higher is better) and reconstruction error (lower)"),
        }
        if shape:
            result.figures["reconstructions"] = reconstructions_figure(
                [("original", flat_test[:n].reshape(shape)), ("autoencoder", ae_recon[:n].reshape(shape)),
                 ("PCA", pca_recon[:n].reshape(shape))], out / "reconstructions.png",
                title="The same test images, reconstructed from 2 numbers")
        result.captions = {"codes": "Every test image as the two numbers each method keeps, coloured by its class.",
                           "separability": "k-NN accuracy on the 2-D test codes (fitted on the training codes) "
                                           "and the reconstruction error (×10 to share the axis).",
                           "reconstructions": "The same test images: originals, then the autoencoder's and PCA's "
                                              "reconstructions from two numbers each."}
        better = "better" if knn_ae > knn_pca else "worse"
        result.text = (f"With {width} numbers per image, the autoencoder's codes separate the classes {better} than "
                       f"PCA's ({opts.k}-NN accuracy {pct(knn_ae)} vs {pct(knn_pca)}; chance "
                       f"{pct(numbers['chance'])}), and it reconstructs with MSE {fmt(ae_mse, 3)} against "
                       f"PCA's {fmt(pca_mse, 3)}.")
        result.elapsed_s = timer.s
        finish_record(store, result)
        return result
