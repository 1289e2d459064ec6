"""Small segmentation folders written by tests: VOC and generic layouts of coloured squares."""

from pathlib import Path

import numpy as np
from PIL import Image

from grpo_rm.data.segmentation import VOC_CLASSES

VOC_PALETTE = [0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * (255 - 3) * 3 + [224, 224, 192]


def squares(rng: np.random.Generator, size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """A dark noisy image with a red square (class 1) and a green square (class 2); 255 on the red square's border."""
    image = rng.integers(0, 40, (size, size, 3), dtype=np.uint8)
    mask = np.zeros((size, size), dtype=np.uint8)
    for label, channel in ((1, 0), (2, 1)):
        side = int(rng.integers(size // 4, size // 2))
        top, left = (int(v) for v in rng.integers(0, size - side, 2))
        image[top : top + side, left : left + side, channel] = 220
        mask[top : top + side, left : left + side] = label
    border = (mask == 1) & ~np.pad(mask == 1, 1)[2:, 1:-1]  # bottom edge of the red square
    mask[border] = 255
    return image, mask


def palette_png(mask: np.ndarray, path: Path) -> None:
    image = Image.fromarray(mask)
    image = image.convert("P")
    image.putpalette(VOC_PALETTE)
    image.save(path)


def write_voc(root: Path, train: int = 24, val: int = 8, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    for folder in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    for split, count in (("train", train), ("val", val)):
        names = [f"{split}_{i:03d}" for i in range(count)]
        for name in names:
            image, mask = squares(rng)
            Image.fromarray(image).save(root / "JPEGImages" / f"{name}.jpg", quality=95)
            palette_png(mask, root / "SegmentationClass" / f"{name}.png")
        (root / "ImageSets" / "Segmentation" / f"{split}.txt").write_text("\n".join(names) + "\n")
    return root


def write_generic(root: Path, seed: int = 1) -> Path:
    rng = np.random.default_rng(seed)
    for split, count in (("train", 16), ("test", 6)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for i in range(count):
            image, mask = squares(rng)
            Image.fromarray(image).save(root / split / "images" / f"{i}.png")
            Image.fromarray(mask).save(root / split / "masks" / f"{i}.png")
    (root / "classes.txt").write_text("background\nred\ngreen\n")
    return root


assert len(VOC_CLASSES) == 21
