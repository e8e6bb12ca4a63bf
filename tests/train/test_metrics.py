"""Metrics against values computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from cropland.train.metrics import classification_metrics, confusion_matrix


def test_confusion_and_macro_metrics_by_hand():
    labels = np.array([0, 0, 0, 1, 1, 2])
    preds = np.array([0, 0, 1, 1, 2, 2])
    cm = confusion_matrix(labels, preds, 4)
    assert cm.tolist() == [[2, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0], [0, 0, 0, 0]]
    m = classification_metrics(cm)
    # precision: 2/2, 1/2, 1/2 ; recall: 2/3, 1/2, 1/1 ; class 3 absent everywhere -> not averaged
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["precision"] == pytest.approx((1 + 0.5 + 0.5) / 3)
    assert m["recall"] == pytest.approx((2 / 3 + 0.5 + 1) / 3)
    f1 = [2 * 1 * (2 / 3) / (1 + 2 / 3), 0.5, 2 * 0.5 * 1 / 1.5]
    assert m["f1"] == pytest.approx(sum(f1) / 3)
    assert m["n"] == 6


def test_never_predicted_class_has_zero_precision():
    m = classification_metrics(confusion_matrix(np.array([0, 1]), np.array([0, 0]), 2))
    assert m["precision"] == pytest.approx((0.5 + 0) / 2)
    assert m["recall"] == pytest.approx((1 + 0) / 2)
    with pytest.raises(ValueError):
        confusion_matrix(np.array([0, 1]), np.array([0]), 2)
