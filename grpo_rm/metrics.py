"""Metrics from a confusion matrix accumulated over a whole split: macro-F1, and mIoU / mAcc / aAcc."""

from __future__ import annotations

import torch


def confusion_matrix(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int,
                     ignore_index: int = 255) -> torch.Tensor:
    """[C, C] int64 counts, rows = true class, columns = predicted class; ``ignore_index`` pixels are skipped."""
    valid = targets != ignore_index
    index = targets[valid].long() * num_classes + predictions[valid].long()
    return torch.bincount(index, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def segmentation_scores(confusion: torch.Tensor) -> dict:
    """mIoU, per-class IoU, mAcc and aAcc. A class absent from both predictions and targets has no IoU
    (None) and is left out of the mean; mAcc averages over classes present in the targets."""
    confusion = confusion.double()
    true_positive = confusion.diagonal()
    in_target = confusion.sum(dim=1)
    in_prediction = confusion.sum(dim=0)
    union = in_target + in_prediction - true_positive
    iou = torch.where(union > 0, true_positive / union.clamp_min(1), torch.full_like(union, float("nan")))
    accuracy = torch.where(in_target > 0, true_positive / in_target.clamp_min(1), torch.full_like(union, float("nan")))
    total = confusion.sum()
    return {
        "mean_iou": float(iou.nanmean()) if bool((union > 0).any()) else 0.0,
        "mean_accuracy": float(accuracy.nanmean()) if bool((in_target > 0).any()) else 0.0,
        "overall_accuracy": float(true_positive.sum() / total) if total > 0 else 0.0,
        "per_category_iou": [None if torch.isnan(v) else float(v) for v in iou],
        "per_category_accuracy": [None if torch.isnan(v) else float(v) for v in accuracy],
    }


def macro_f1(confusion: torch.Tensor) -> float:
    """Unweighted mean over classes of F1 = 2TP / (2TP + FP + FN), over the classes that occur in the
    labels or the predictions (as scikit-learn's ``f1_score(average="macro")``)."""
    confusion = confusion.double()
    true_positive = confusion.diagonal()
    in_target, in_prediction = confusion.sum(dim=1), confusion.sum(dim=0)
    present = (in_target + in_prediction) > 0
    if not bool(present.any()):
        return 0.0
    f1 = 2 * true_positive[present] / (in_target[present] + in_prediction[present])
    return float(f1.mean())
