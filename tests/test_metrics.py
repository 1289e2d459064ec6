import math

import pytest
import torch

from grpo_rm.metrics import confusion_matrix, segmentation_scores


def test_confusion_matrix_and_scores_by_hand():
    target = torch.tensor([[0, 0, 1, 1], [2, 2, 255, 0]])
    prediction = torch.tensor([[0, 1, 1, 1], [2, 0, 2, 0]])
    matrix = confusion_matrix(prediction, target, num_classes=4, ignore_index=255)
    # rows: true 0 -> pred {0: 2, 1: 1}; true 1 -> {1: 2}; true 2 -> {2: 1, 0: 1}; the 255 pixel is skipped
    expected = torch.tensor([[2, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]])
    assert torch.equal(matrix, expected)
    scores = segmentation_scores(matrix)
    iou = [2 / (3 + 3 - 2), 2 / (2 + 3 - 2), 1 / (2 + 1 - 1)]  # class 3 absent from both: excluded
    assert scores["per_category_iou"][:3] == [iou[0], iou[1], iou[2]] and scores["per_category_iou"][3] is None
    assert math.isclose(scores["mean_iou"], sum(iou) / 3)
    assert math.isclose(scores["mean_accuracy"], (2 / 3 + 1 + 1 / 2) / 3)
    assert math.isclose(scores["overall_accuracy"], 5 / 7)


def test_class_only_predicted_counts_with_zero_iou():
    target = torch.tensor([0, 0, 0, 0])
    prediction = torch.tensor([0, 0, 0, 3])
    scores = segmentation_scores(confusion_matrix(prediction, target, 4))
    assert scores["per_category_iou"] == [0.75, None, None, 0.0]
    assert math.isclose(scores["mean_iou"], 0.375)
    assert scores["per_category_accuracy"] == [0.75, None, None, None]


def test_macro_f1_matches_scikit_learn():
    import numpy as np
    from sklearn.metrics import f1_score

    from grpo_rm.metrics import macro_f1

    rng = np.random.default_rng(0)
    for num_classes in (2, 5):
        labels = rng.integers(0, num_classes, 200)
        predictions = np.where(rng.random(200) < 0.6, labels, rng.integers(0, num_classes, 200))
        predictions[predictions == num_classes - 1] = 0  # a class never predicted counts with F1 0
        confusion = confusion_matrix(torch.as_tensor(predictions), torch.as_tensor(labels), num_classes, -100)
        assert macro_f1(confusion) == pytest.approx(f1_score(labels, predictions, average="macro"))
