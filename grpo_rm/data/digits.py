"""The embedded default dataset: scikit-learn's 8x8 handwritten digits as images.

1,797 images split once, stratified with a fixed seed, into 1,257 train, 180
validation and 360 test images, so every run and every ``grpo-rm eval`` sees the
same split. Images are 8x8 grayscale; the transforms upscale them and make them RGB.
"""

from __future__ import annotations

import functools

import datasets
import numpy as np
from PIL import Image

DIGITS_NAME = "digits"
DIGITS_SPLIT_SEED = 0
DIGITS_TEST_SIZE = 360
DIGITS_VALIDATION_SIZE = 180


def load_digits_dataset() -> datasets.DatasetDict:
    # A copy of the mapping: callers may replace its splits; the splits themselves are never changed in place.
    return datasets.DatasetDict(_load_digits_dataset())


@functools.lru_cache(maxsize=1)  # built once per process: it encodes every image
def _load_digits_dataset() -> datasets.DatasetDict:
    # Imported here: scikit-learn takes over a second to load, and only the embedded datasets need it.
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    pixels = np.clip(bunch.images * (255.0 / 16.0), 0, 255).round().astype(np.uint8)
    labels = bunch.target.astype(int)
    indices = np.arange(len(labels))
    rest, test = train_test_split(
        indices, test_size=DIGITS_TEST_SIZE, stratify=labels, random_state=DIGITS_SPLIT_SEED
    )
    train, validation = train_test_split(
        rest, test_size=DIGITS_VALIDATION_SIZE, stratify=labels[rest], random_state=DIGITS_SPLIT_SEED
    )
    features = datasets.Features(
        {"image": datasets.Image(), "label": datasets.ClassLabel(names=[str(d) for d in range(10)])}
    )

    def split(rows: np.ndarray) -> datasets.Dataset:
        rows = np.sort(rows)
        images = [Image.fromarray(pixels[i]) for i in rows]
        return datasets.Dataset.from_dict({"image": images, "label": labels[rows].tolist()}, features=features)

    return datasets.DatasetDict({"train": split(train), "validation": split(validation), "test": split(test)})
