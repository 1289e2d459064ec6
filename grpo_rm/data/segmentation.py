"""Semantic-segmentation data: PASCAL VOC, ADE20K, generic image/mask folders, HF datasets, ``digits-seg``.

Every source becomes train/validation/test ``datasets.Dataset`` splits with an image
and a mask column (undecoded), and one list of class names. Masks hold class indices
(palette or grayscale PNGs); ``ignore_index`` (255) marks pixels left out of loss and
metrics. A mask value that is neither is reported with the file's name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import datasets
import numpy as np
from PIL import Image

from ..config import DataArguments
from ..seeding import EpochSeededDataset
from .digits_seg import CLASS_NAMES as DIGITS_SEG_CLASSES
from .digits_seg import DIGITS_SEG_NAME, load_digits_seg_dataset
from .loading import SPLIT_ALIASES, assign_splits, decode_image

VOC_CLASSES = [
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
]
MASK_COLUMNS = ("mask", "annotation", "label", "segmentation", "semantic_segmentation")
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
CLASS_NAMES_FILE = "classes.txt"


@dataclass
class SegmentationSplits:
    train: datasets.Dataset
    validation: datasets.Dataset
    test: datasets.Dataset
    class_names: list[str]
    image_column: str
    mask_column: str
    validation_source: str
    skipped_bad_image_paths: list[str] = field(default_factory=list)  # files (or rows) left out by skip_bad_images

    @property
    def skipped_bad_images(self) -> int:
        return len(self.skipped_bad_image_paths)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


def _pairs_dataset(images: list[Path], masks: list[Path]) -> datasets.Dataset:
    features = datasets.Features({"image": datasets.Image(decode=False), "mask": datasets.Image(decode=False)})
    return datasets.Dataset.from_dict({"image": [str(p) for p in images], "mask": [str(p) for p in masks]},
                                      features=features)


def _match_masks(image_dir: Path, mask_dir: Path, stems: Optional[list[str]] = None) -> datasets.Dataset:
    masks = {p.stem: p for p in mask_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    images = {p.stem: p for p in image_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    stems = stems if stems is not None else sorted(images)
    missing_images = [s for s in stems if s not in images]
    missing_masks = [s for s in stems if s not in masks]
    if missing_images or missing_masks:
        raise ValueError(
            f"{image_dir} / {mask_dir}: images without masks {missing_masks[:5]}, listed names without images "
            f"{missing_images[:5]}"
        )
    if not stems:
        raise ValueError(f"no images in {image_dir}")
    return _pairs_dataset([images[s] for s in stems], [masks[s] for s in stems])


def _load_voc(root: Path) -> datasets.DatasetDict:
    lists = root / "ImageSets" / "Segmentation"
    splits = {}
    for name in ("train", "val", "test"):
        listing = lists / f"{name}.txt"
        if listing.is_file():
            stems = [line.strip() for line in listing.read_text().splitlines() if line.strip()]
            if not any((root / "SegmentationClass" / f"{stem}.png").is_file() for stem in stems):
                continue  # VOC's test list ships without masks
            splits[SPLIT_ALIASES.get(name, name)] = _match_masks(root / "JPEGImages", root / "SegmentationClass", stems)
    if "train" not in splits:
        raise ValueError(f"PASCAL VOC folder {root} has no ImageSets/Segmentation/train.txt")
    return datasets.DatasetDict(splits)


def _load_ade(root: Path) -> datasets.DatasetDict:
    splits = {}
    for name, alias in (("training", "train"), ("validation", "validation")):
        if (root / "images" / name).is_dir():
            splits[alias] = _match_masks(root / "images" / name, root / "annotations" / name)
    return datasets.DatasetDict(splits)


def _load_generic(root: Path) -> datasets.DatasetDict:
    splits = {}
    for folder in sorted(p for p in root.iterdir() if p.is_dir()):
        if (folder / "images").is_dir():
            if not (folder / "masks").is_dir():
                raise ValueError(f"{folder} has images/ but no masks/ folder")
            splits[SPLIT_ALIASES.get(folder.name, folder.name)] = _match_masks(folder / "images", folder / "masks")
    return datasets.DatasetDict(splits)


def load_raw_segmentation(name: str, config_name: Optional[str] = None) -> tuple[datasets.DatasetDict, Optional[list[str]]]:
    """Splits and, where the layout defines them, class names."""
    if name == DIGITS_SEG_NAME:
        return load_digits_seg_dataset(), list(DIGITS_SEG_CLASSES)
    root = Path(name).expanduser()
    if not root.exists():
        if name.startswith((".", "/", "~")):
            raise FileNotFoundError(f"dataset folder {name} does not exist")
        raw = datasets.load_dataset(name, config_name)
        return datasets.DatasetDict({SPLIT_ALIASES.get(k, k): v for k, v in raw.items()}), None
    names_file = root / CLASS_NAMES_FILE
    names = [line.strip() for line in names_file.read_text().splitlines() if line.strip()] if names_file.is_file() else None
    if (root / "JPEGImages").is_dir() and (root / "SegmentationClass").is_dir():
        return _load_voc(root), names or list(VOC_CLASSES)
    if (root / "images" / "training").is_dir() and (root / "annotations" / "training").is_dir():
        return _load_ade(root), names
    generic = _load_generic(root)
    if generic:
        return generic, names
    if (root / "dataset_dict.json").is_file():
        raw = datasets.load_from_disk(str(root))
        return datasets.DatasetDict({SPLIT_ALIASES.get(k, k): v for k, v in raw.items()}), names
    raise ValueError(
        f"{root} is not a segmentation dataset folder: expected PASCAL VOC (JPEGImages/, SegmentationClass/, "
        "ImageSets/Segmentation/train.txt), ADE20K (images/training, annotations/training), per-split "
        "<split>/images + <split>/masks folders, or a save_to_disk folder"
    )


def decode_mask(value, where: str, reduce_labels: bool = False, ignore_index: int = 255) -> np.ndarray:
    """Class indices of a palette or grayscale mask as int64; RGB colour masks are refused by name."""
    path = value.get("path") if isinstance(value, dict) else None
    mask = decode_image(value, where, kind="mask")
    if mask.mode not in ("P", "L", "I", "I;16"):
        raise ValueError(
            f"mask {path or where} is a {mask.mode} image; masks must hold class indices (palette or grayscale PNG)"
        )
    array = np.asarray(mask, dtype=np.int64)
    if reduce_labels:  # ADE20K: 0 is "other", ignored; classes shift down by one; 255 stays ignored
        array = np.where((array == 0) | (array == 255), ignore_index, array - 1)
    return array


def _infer_class_names(train: datasets.Dataset, mask_column: str, args: DataArguments) -> list[str]:
    largest = -1
    for index in range(len(train)):
        try:
            values = decode_mask(train[index][mask_column], f"row {index} of train", args.reduce_labels,
                                 args.ignore_index)
        except ValueError:
            if args.skip_bad_images:  # unreadable: assign_splits leaves the row out; other faults show when read
                continue
            raise
        values = values[values != args.ignore_index]
        if values.size:
            largest = max(largest, int(values.max()))
    if largest < 1:
        raise ValueError("the training masks hold fewer than two classes")
    return [str(i) for i in range(largest + 1)]


def load_segmentation_splits(args: DataArguments) -> SegmentationSplits:
    """Same split rules as classification: test = test, else validation; validation = a distinct
    validation split, else carved from train, else (``train_val_split: 0``) the test split."""
    raw, class_names = load_raw_segmentation(args.dataset_name, args.dataset_config_name)
    if "train" not in raw:
        raise ValueError(f"segmentation dataset {args.dataset_name!r} has no train split (it has {list(raw)})")
    columns = raw["train"].column_names
    image_column = args.image_column_name or next((c for c in ("image", "img", "pixel_values") if c in columns), None)
    mask_column = args.mask_column_name or next((c for c in MASK_COLUMNS if c in columns), None)
    if image_column not in columns or mask_column not in columns:
        raise ValueError(f"image/mask columns not found among {columns}; name them with --image_column_name "
                         "and --mask_column_name")
    raw = datasets.DatasetDict({
        name: split.select_columns([image_column, mask_column])
        .cast_column(image_column, datasets.Image(decode=False))
        .cast_column(mask_column, datasets.Image(decode=False))
        for name, split in raw.items()
    })
    if class_names is None:  # from every training mask, before carving or truncation
        class_names = _infer_class_names(raw["train"], mask_column, args)
    train, validation, test, validation_source, skipped = assign_splits(raw, args)
    return SegmentationSplits(train, validation, test, class_names, image_column, mask_column, validation_source,
                              skipped)


class SegmentationDataset(EpochSeededDataset):
    """(pixel_values, mask) pairs with a joint transform; masks are checked against the class list.
    ``seed`` keys the random transforms."""

    def __init__(self, split: datasets.Dataset, image_column: str, mask_column: str, num_classes: int,
                 transform: Callable, name: str, ignore_index: int = 255, reduce_labels: bool = False,
                 seed: Optional[int] = None):
        self.seed = seed
        self.split = split
        self.image_column = image_column
        self.mask_column = mask_column
        self.num_classes = num_classes
        self.transform = transform
        self.name = name
        self.ignore_index = ignore_index
        self.reduce_labels = reduce_labels

    def __len__(self) -> int:
        return len(self.split)

    def load(self, index: int) -> tuple[Image.Image, np.ndarray]:
        row = self.split[index]
        where = f"row {index} of the {self.name} split"
        image = decode_image(row[self.image_column], where)
        mask = decode_mask(row[self.mask_column], where, self.reduce_labels, self.ignore_index)
        source = row[self.mask_column].get("path") if isinstance(row[self.mask_column], dict) else None
        bad = np.setdiff1d(np.unique(mask), np.append(np.arange(self.num_classes), self.ignore_index))
        if bad.size:
            raise ValueError(
                f"mask {source or where} has values {bad[:8].tolist()} that are neither class indices "
                f"0..{self.num_classes - 1} nor ignore_index {self.ignore_index}"
            )
        if mask.shape != (image.height, image.width):
            raise ValueError(f"mask {source or where} is {mask.shape[1]}x{mask.shape[0]} but its image is "
                             f"{image.width}x{image.height}")
        return image, mask

    def sources(self, index: int) -> dict:
        """Where an example's image and mask come from: file paths, or the row for in-memory data."""
        row = self.split[index]
        return {kind: (row[column].get("path") if isinstance(row[column], dict) else None) or f"{self.name} row {index}"
                for kind, column in (("image", self.image_column), ("mask", self.mask_column))}

    def __getitem__(self, index: int):
        return self.transform(*self.load(index), self.sample_generator(index))
