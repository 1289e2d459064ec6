"""Write the study's segmentation set: MNIST test digits pasted on 56-px canvases, in PASCAL VOC layout.

    python studies/method-study/make_segmentation_set.py ../shared/data/mnist-parquet study/digit-canvases

Each canvas is dark noise with two digits at random, possibly overlapping, positions (the later one on top). The
mask gives each pixel its digit's class (1-10 for the digits 0-9; 0 background). Pixels of intermediate ink are
255 (ignored), as VOC marks object borders. Only MNIST's *test* digits are used, so none was seen when the stand-in
was pretrained on MNIST's training digits: 700 digits make 350 training canvases, the next 150 make 75 validation
canvases and the last 150 make 75 test canvases. ``classes.txt`` names the 11 classes. About 94 % of the labelled
pixels are background, so predicting background everywhere scores an mIoU near 0.94 / 11 = 0.085.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

CANVAS = 56
DIGITS_PER_CANVAS = 2
SPLITS = (("train", 350), ("val", 75), ("test", 75))
INK, FAINT = 128, 32  # ink >= INK is the digit; FAINT < ink < INK is an ambiguous border (255)
IGNORE = 255


def mnist_test_digits(folder: Path) -> tuple[list[np.ndarray], list[int]]:
    table = pq.read_table(folder / "test.parquet").to_pydict()
    images = [np.asarray(Image.open(io.BytesIO(cell["bytes"])).convert("L")) for cell in table["image"]]
    return images, [int(label) for label in table["label"]]


def canvas(digits: list[np.ndarray], labels: list[int], rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    image = rng.integers(0, 40, (CANVAS, CANVAS), dtype=np.uint8)
    mask = np.zeros((CANVAS, CANVAS), dtype=np.uint8)
    for digit, label in zip(digits, labels):
        top, left = (int(v) for v in rng.integers(0, CANVAS - digit.shape[0] + 1, 2))
        window = (slice(top, top + digit.shape[0]), slice(left, left + digit.shape[1]))
        ink = digit >= INK
        border = (digit > FAINT) & ~ink
        image[window] = np.maximum(image[window], digit)
        mask[window][border & (mask[window] == 0)] = IGNORE
        mask[window][ink] = label + 1
    return np.stack([image] * 3, axis=-1), mask


def write(mnist: Path, root: Path, seed: int = 0) -> Path:
    images, labels = mnist_test_digits(mnist)
    needed = sum(count for _, count in SPLITS) * DIGITS_PER_CANVAS
    if len(images) < needed:
        raise SystemExit(f"{mnist / 'test.parquet'} has {len(images)} digits; the set needs {needed}")
    rng = np.random.default_rng(seed)
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    palette = [0, 0, 0] + [channel for i in range(1, 256) for channel in (i * 23 % 256, i * 71 % 256, i * 139 % 256)]
    position = 0
    for split, count in SPLITS:
        stems = []
        for index in range(count):
            chosen = slice(position, position + DIGITS_PER_CANVAS)
            position += DIGITS_PER_CANVAS
            image, mask = canvas(images[chosen], labels[chosen], rng)
            stem = f"{split}_{index:04d}"
            Image.fromarray(image).save(root / "JPEGImages" / f"{stem}.png")
            indexed = Image.fromarray(mask, mode="L").convert("P")
            indexed.putpalette(palette)
            indexed.save(root / "SegmentationClass" / f"{stem}.png")
            stems.append(stem)
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(stems) + "\n")
    (root / "classes.txt").write_text("\n".join(["background"] + [str(d) for d in range(10)]) + "\n")
    return root


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(write(Path(sys.argv[1]), Path(sys.argv[2])))
