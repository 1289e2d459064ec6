"""Labelled texts (one text, or a pair for NLI-style tasks) from local files, save_to_disk folders or the hub.

The same split rules and label handling as images (``load_labelled_splits``); texts stay
strings here and are tokenized per batch by the task's collate function.
"""

from __future__ import annotations

import datasets
import torch

from ..config import DataArguments
from .loading import ClassificationSplits, load_labelled_splits, pick_column

TEXT_COLUMNS = ("text", "sentence", "content", "question", "document", "review")
TEXT_PAIR_COLUMNS = (("sentence1", "sentence2"), ("premise", "hypothesis"), ("question1", "question2"),
                     ("text1", "text2"))


def text_columns(train: datasets.Dataset, requested: list[str] | None) -> list[str]:
    """The requested text column(s), else the first known single column, else a known pair."""
    if requested:
        if len(requested) > 2:
            raise ValueError(f"text_column_names takes one column or a pair, got {requested}")
        return [pick_column(train, name, (), "text") for name in requested]
    for name in TEXT_COLUMNS:
        if name in train.column_names:
            return [name]
    for pair in TEXT_PAIR_COLUMNS:
        if all(name in train.column_names for name in pair):
            return list(pair)
    raise ValueError(f"no text column among {train.column_names}; name one (or a pair) with --text_column_names")


def load_text_classification_splits(args: DataArguments) -> ClassificationSplits:
    def check_strings(raw: datasets.DatasetDict, columns: list[str]) -> datasets.DatasetDict:
        for column in columns:
            feature = raw["train"].features[column]
            if not (isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")):
                raise ValueError(f"text column {column!r} of {args.dataset_name} holds {feature}, not strings; "
                                 "name the text column(s) with --text_column_names")
        return raw

    return load_labelled_splits(args, lambda train: text_columns(train, args.text_column_names), check_strings)


class TextDataset(torch.utils.data.Dataset):
    """(texts, label) pairs from one split; ``texts`` is a tuple of one or two strings."""

    def __init__(self, splits: ClassificationSplits, split: str):
        self.split = getattr(splits, split)
        self.text_columns = splits.input_columns
        self.label_column = splits.label_column
        self.name = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[tuple[str, ...], int]:
        row = self.split[index]
        texts = tuple(row[column] for column in self.text_columns)
        if any(text is None for text in texts):
            raise ValueError(f"row {index} of the {self.name} split has no text in {list(self.text_columns)}")
        return texts, row[self.label_column]

    def texts(self) -> list[list[str]]:
        """Every example's texts, column by column (for token lengths)."""
        return [self.split[column] for column in self.text_columns]
