"""Frozen-feature classifiers as pure functions of tensors: weighted kNN and softmax regression.

kNN follows DINO/DINOv2: cosine similarity to every training feature, the k nearest
vote for their label with weight exp(similarity / temperature). Softmax regression is
a linear classifier on standardised features trained with SGD + momentum and a cosine
schedule (as in DINOv2's linear evaluation), swept over a learning-rate x weight-decay
grid and selected on a validation split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F


def knn_predict(
    train_features: torch.Tensor,
    train_labels: torch.Tensor,
    query_features: torch.Tensor,
    num_classes: int,
    k_values: Sequence[int] = (10, 20, 100),
    temperature: float = 0.07,
    chunk_size: int = 1024,
) -> dict[int, torch.Tensor]:
    """Predicted labels of the queries for every k, by temperature-weighted cosine-similarity voting."""
    if not k_values or min(k_values) < 1:
        raise ValueError(f"k values must be positive, got {list(k_values)}")
    max_k = min(max(k_values), train_features.shape[0])
    train = F.normalize(train_features.float(), dim=-1)
    predictions: dict[int, list[torch.Tensor]] = {k: [] for k in k_values}
    for start in range(0, query_features.shape[0], chunk_size):
        query = F.normalize(query_features[start : start + chunk_size].float(), dim=-1)
        similarity, index = (query @ train.T).topk(max_k, dim=-1)
        neighbour_labels = train_labels[index]
        weights = (similarity / temperature).exp()
        for k in k_values:
            k_used = min(k, max_k)
            votes = torch.zeros(query.shape[0], num_classes, dtype=weights.dtype)
            votes.scatter_add_(1, neighbour_labels[:, :k_used], weights[:, :k_used])
            predictions[k].append(votes.argmax(dim=-1))
    return {k: torch.cat(parts) for k, parts in predictions.items()}


@dataclass
class SoftmaxRegression:
    """A trained linear classifier with the feature standardisation it was trained with."""

    weight: torch.Tensor
    bias: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor

    def logits(self, features: torch.Tensor) -> torch.Tensor:
        return ((features.float() - self.mean) / self.std) @ self.weight.T + self.bias

    def predict(self, features: torch.Tensor) -> torch.Tensor:
        return self.logits(features).argmax(dim=-1)


def fit_softmax_regression(
    features: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    learning_rate: float = 0.1,
    weight_decay: float = 0.0,
    epochs: int = 100,
    batch_size: int = 256,
    seed: int = 0,
) -> SoftmaxRegression:
    features = features.float()
    mean, std = features.mean(dim=0), features.std(dim=0).clamp_min(1e-6)
    standardised = (features - mean) / std
    generator = torch.Generator().manual_seed(seed)
    linear = torch.nn.Linear(features.shape[1], num_classes)
    torch.nn.init.zeros_(linear.weight)
    torch.nn.init.zeros_(linear.bias)
    optimizer = torch.optim.SGD(linear.parameters(), lr=learning_rate, momentum=0.9, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(labels) / batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(labels), batch_size):
            batch = order[start : start + batch_size]
            loss = F.cross_entropy(linear(standardised[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    return SoftmaxRegression(linear.weight.detach(), linear.bias.detach(), mean, std)


def accuracy(predictions: torch.Tensor, labels: torch.Tensor) -> float:
    return float((predictions == labels).float().mean())


def sweep_softmax_regression(
    train: tuple[torch.Tensor, torch.Tensor],
    validation: tuple[torch.Tensor, torch.Tensor],
    test: tuple[torch.Tensor, torch.Tensor],
    num_classes: int,
    learning_rates: Sequence[float] = (1e-3, 1e-2, 1e-1),
    weight_decays: Sequence[float] = (0.0, 1e-4),
    epochs: int = 100,
    seed: int = 0,
) -> dict:
    """Fit every grid point on train, select the best validation top-1, report its test top-1."""
    grid = []
    for lr in learning_rates:
        for wd in weight_decays:
            model = fit_softmax_regression(*train, num_classes, lr, wd, epochs=epochs, seed=seed)
            grid.append({
                "learning_rate": lr,
                "weight_decay": wd,
                "validation_accuracy": accuracy(model.predict(validation[0]), validation[1]),
                "test_accuracy": accuracy(model.predict(test[0]), test[1]),
            })
    best = max(grid, key=lambda point: point["validation_accuracy"])  # first of equals: smallest lr, wd
    return {"test_accuracy": best["test_accuracy"], "selected": best, "grid": grid}
