"""``digits-seg``: the embedded segmentation default, built deterministically from scikit-learn's digits.

Each 32x32 canvas holds one or two digits pasted at random positions and scales
(2x or 3x of the 8x8 originals, so a digit spans several 4-pixel patches). Pixels inked by a digit get class digit + 1, the rest is
background 0; a later digit covers an earlier one. 600 train, 100 validation and 200
test canvases, drawn from disjoint digit images with a fixed seed.
"""

from __future__ import annotations

import functools

import datasets
import numpy as np
from PIL import Image

DIGITS_SEG_NAME = "digits-seg"
CANVAS = 32
SPLIT_SIZES = {"train": 600, "validation": 100, "test": 200}
CLASS_NAMES = ["background"] + [str(d) for d in range(10)]
INK_THRESHOLD = 4  # of 16


def _canvas(rng: np.random.Generator, images: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = np.zeros((CANVAS, CANVAS), dtype=np.float32)
    mask = np.zeros((CANVAS, CANVAS), dtype=np.uint8)
    for _ in range(int(rng.integers(1, 3))):
        index = int(rng.integers(len(images)))
        scale = int(rng.integers(2, 4))
        digit = np.kron(images[index], np.ones((scale, scale), dtype=np.float32))
        size = digit.shape[0]
        top, left = (int(v) for v in rng.integers(0, CANVAS - size + 1, size=2))
        ink = digit > INK_THRESHOLD
        image[top : top + size, left : left + size][ink] = digit[ink] / 16.0
        mask[top : top + size, left : left + size][ink] = labels[index] + 1
    noise = rng.normal(0.0, 0.05, image.shape).astype(np.float32)
    pixels = np.clip((image + noise) * 255, 0, 255).astype(np.uint8)
    return pixels, mask


def load_digits_seg_dataset() -> datasets.DatasetDict:
    # A copy of the mapping: callers may replace its splits; the splits themselves are never changed in place.
    return datasets.DatasetDict(_load_digits_seg_dataset())


@functools.lru_cache(maxsize=1)  # built once per process: it encodes every image
def _load_digits_seg_dataset() -> datasets.DatasetDict:
    from sklearn.datasets import load_digits  # here: scikit-learn takes over a second to load

    bunch = load_digits()
    order = np.random.default_rng(0).permutation(len(bunch.target))
    # Disjoint digit images per split: 60 % / 10 % / 30 % of the 1,797.
    cut1, cut2 = int(0.6 * len(order)), int(0.7 * len(order))
    pools = {"train": order[:cut1], "validation": order[cut1:cut2], "test": order[cut2:]}
    features = datasets.Features({"image": datasets.Image(), "mask": datasets.Image()})
    splits = {}
    for offset, (name, size) in enumerate(SPLIT_SIZES.items()):
        rng = np.random.default_rng(1000 + offset)
        pool = pools[name]
        rows = [_canvas(rng, bunch.images[pool], bunch.target[pool]) for _ in range(size)]
        splits[name] = datasets.Dataset.from_dict(
            {"image": [Image.fromarray(p) for p, _ in rows], "mask": [Image.fromarray(m) for _, m in rows]},
            features=features,
        )
    return datasets.DatasetDict(splits)
