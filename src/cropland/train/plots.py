"""Figures of the benchmark report (matplotlib, Agg backend)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cropland.io import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(confusion: np.ndarray, classes: list[str], title: str, path: Path) -> Path:
    """Row-normalised confusion matrix with counts in the cells."""
    plt = _pyplot()
    rows = confusion.sum(axis=1, keepdims=True)
    share = np.divide(confusion, rows, out=np.zeros(confusion.shape), where=rows > 0)
    size = 1.2 + 0.55 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(len(classes)), classes, fontsize=8)
    for (i, j), count in np.ndenumerate(confusion):
        if count:
            ax.text(
                j, i, str(count), ha="center", va="center", fontsize=7, color="white" if share[i, j] > 0.5 else "black"
            )
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, label="share of the true class")
    return _save(fig, path)


def plot_learning_curves(results: list[dict], path: Path) -> Path:
    """Training loss and validation accuracy per epoch, one line per model (mean over seeds)."""
    plt = _pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(12.5, 4))
    for model in dict.fromkeys(r["model"] for r in results):
        runs = [r["history"] for r in results if r["model"] == model]
        length = min(len(h) for h in runs)
        epochs = np.arange(1, length + 1)
        for ax, key in ((left, "train_loss"), (right, "val_accuracy")):
            mean = np.mean([[e[key] for e in h[:length]] for h in runs], axis=0)
            ax.plot(epochs, mean, label=model, marker="o", markersize=3)
    left.set(xlabel="epoch", ylabel="training loss", title="training loss")
    right.set(xlabel="epoch", ylabel="accuracy", title="validation accuracy", ylim=(0, 1))
    right.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1), borderaxespad=0)  # off the curves
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    plt = _pyplot()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
    return path
