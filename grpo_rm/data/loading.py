"""Labelled data (images or texts) from the embedded default, the hub, or local files, as train/validation/test.

Every source becomes a ``datasets.DatasetDict``; labels become indices into one list
of class names shared by all splits. Images are decoded lazily by ``ImageDataset`` so
that a corrupt file is reported by name when it is reached, or, with ``skip_bad_images``,
decoded once at loading time so that unreadable ones are left out and counted.
"""

from __future__ import annotations

import dataclasses
import io
import logging
import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

import datasets
import numpy as np
import torch
from datasets.data_files import SPLIT_KEYWORDS
from PIL import Image, UnidentifiedImageError

from ..config import DataArguments
from ..seeding import EpochSeededDataset
from .digits import DIGITS_NAME, load_digits_dataset

logger = logging.getLogger(__name__)

IMAGE_COLUMNS = ("image", "img", "pixel_values")
LABEL_COLUMNS = ("label", "labels", "fine_label")
SPLIT_ALIASES = {"val": "validation", "valid": "validation", "dev": "validation", "eval": "validation"}


LOCAL_FILE_BUILDERS = {".parquet": "parquet", ".arrow": "arrow", ".csv": "csv", ".json": "json", ".jsonl": "json"}


@dataclass
class ClassificationSplits:
    train: datasets.Dataset
    validation: datasets.Dataset
    test: datasets.Dataset
    class_names: list[str]
    input_columns: list[str]  # the image column, or one or two text columns
    label_column: str
    validation_source: str  # where the validation split came from, recorded in results
    skipped_bad_image_paths: list[str] = field(default_factory=list)  # files (or rows) left out by skip_bad_images

    @property
    def skipped_bad_images(self) -> int:
        return len(self.skipped_bad_image_paths)

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "validation": len(self.validation), "test": len(self.test)}


def load_raw_dataset(name: str, config_name: Optional[str] = None) -> datasets.DatasetDict:
    """The embedded ``digits``, a local folder (ImageFolder, parquet/arrow/csv/json files, save_to_disk), one
    such file (its rows are the train split), or a hub id."""
    if name == DIGITS_NAME:
        return load_digits_dataset()
    path = Path(name).expanduser()
    if path.exists():
        return _load_local(path)
    if name.startswith((".", "/", "~")):
        raise FileNotFoundError(f"dataset folder {name} does not exist")
    try:
        raw = datasets.load_dataset(name, config_name)
    except Exception as error:  # the hub raises many types; the user needs the name and the reason
        raise ValueError(f"dataset {name!r} is not a local folder and could not be loaded from the hub: {error}") from error
    return _rename_splits(raw)


def _load_local(path: Path) -> datasets.DatasetDict:
    if not path.is_dir():
        builder = LOCAL_FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise ValueError(f"dataset file {path} is not one of {sorted(LOCAL_FILE_BUILDERS)}; pass such a file or "
                             "the folder that holds the splits")
        return datasets.load_dataset(builder, data_files={"train": str(path)})
    if (path / "dataset_dict.json").is_file():
        return _rename_splits(datasets.load_from_disk(str(path)))
    try:
        # datasets infers the format (ImageFolder, parquet, arrow ...) and the splits from file names.
        raw = datasets.load_dataset(str(path))
    except (FileNotFoundError, ValueError) as error:
        empty = re.search(r'Instruction "(\w+)" corresponds to no data', str(error))
        if empty:
            split = SPLIT_ALIASES.get(empty[1], empty[1])
            raise ValueError(f"the {split} split of dataset {path} has no rows; add examples to its file(s) or remove "
                             "them") from error
        raise ValueError(
            f"{path} is not a dataset folder ({error}); expected an ImageFolder tree (train/ and test/ or val/ "
            "with one subfolder per class), train.parquet/test.parquet (or .arrow, .csv, .json/.jsonl, or "
            "data/train-*.parquet), or a save_to_disk folder"
        ) from error
    if any(split.info.builder_name == "imagefolder" for split in raw.values()):
        _check_split_folders(path, raw)
    return _rename_splits(raw)


def _check_split_folders(root: Path, raw: datasets.DatasetDict) -> None:
    """datasets leaves out a split folder that holds no images, so an empty test/ would silently be
    replaced by a part of train."""
    for split, keywords in SPLIT_KEYWORDS.items():
        for keyword in keywords:
            folder = root / keyword
            if folder.is_dir() and str(split) not in raw:
                raise ValueError(f"ImageFolder split folder {folder} holds no images; add images to it (one subfolder "
                                 "per class) or remove the folder")


def _rename_splits(raw: datasets.DatasetDict) -> datasets.DatasetDict:
    return datasets.DatasetDict({SPLIT_ALIASES.get(name, name): split for name, split in raw.items()})


def pick_column(split: datasets.Dataset, requested: Optional[str], candidates, kind: str) -> str:
    if requested is not None:
        if requested not in split.column_names:
            raise ValueError(f"{kind} column {requested!r} not found; the dataset has columns {split.column_names}")
        return requested
    for name in candidates:
        if name in split.column_names:
            return name
    raise ValueError(
        f"no {kind} column among {split.column_names}; name it with --{kind}_column_name"
    )


def _class_names(raw: datasets.DatasetDict, label_column: str) -> tuple[list[str], datasets.DatasetDict]:
    """Class names, and the splits with integer labels indexing them."""
    feature = raw["train"].features[label_column]
    if isinstance(feature, datasets.ClassLabel):
        return list(feature.names), raw
    values = raw["train"].unique(label_column)
    if all(isinstance(v, str) for v in values):
        names = sorted(values)
        index = {name: i for i, name in enumerate(names)}
        unknown = {v for split in raw.values() for v in split.unique(label_column)} - set(index)
        if unknown:
            raise ValueError(f"label values {sorted(unknown)[:5]} appear outside train in column {label_column!r}")
        # A cast (not a map: datasets keeps a string column's type through map) also makes the
        # column a ClassLabel, so that validation carving is stratified as for ClassLabel data.
        return names, raw.cast_column(label_column, datasets.ClassLabel(names=names))
    if all(isinstance(v, int) for v in values):
        return [str(i) for i in range(max(values) + 1)], raw
    raise ValueError(f"label column {label_column!r} must hold integers, strings or a ClassLabel")


def label_values(split: datasets.Dataset, column: str) -> np.ndarray:
    """A column as a numpy array, read through Arrow (respecting a selection's row order): reading
    ``split[column]`` goes through Python objects, a hundred times slower."""
    return np.array(split.with_format("arrow")[column].to_numpy())  # a writable copy


def _check_labels(raw: datasets.DatasetDict, label_column: str, num_classes: int) -> None:
    for split_name, split in raw.items():
        labels = torch.as_tensor(label_values(split, label_column))
        bad = ((labels < 0) | (labels >= num_classes)).nonzero().flatten()
        if len(bad):
            row = int(bad[0])
            raise ValueError(
                f"label {int(labels[row])} in row {row} of split {split_name!r} is out of range "
                f"for {num_classes} classes (column {label_column!r})"
            )


def _check_classes_in_train(raw: datasets.DatasetDict, label_column: str, class_names: list[str],
                            dataset_name: str) -> None:
    """A class with examples in validation or test but none in train (e.g. an empty ImageFolder class
    folder in train/) cannot be learnt; datasets accepts it silently."""
    train_labels = label_values(raw["train"], label_column).astype(np.int64)
    in_train = np.bincount(train_labels, minlength=len(class_names)) > 0
    for split_name, split in raw.items():
        labels = label_values(split, label_column).astype(np.int64) if split_name != "train" else train_labels
        missing = np.unique(labels[~in_train[labels]])
        if not missing.size:
            continue
        label = int(missing[0])
        rows = np.flatnonzero(labels == label)
        example, train_example = _image_path(split, int(rows[0])), _image_path(raw["train"], 0)
        if (example is not None and train_example is not None and example.parent.name == class_names[label]
                and train_example.parent.name == class_names[train_labels[0]]):  # ImageFolder: <split>/<class>/<file>
            train_folder = train_example.parent.parent / class_names[label]
            todo = f"add images to {train_folder} or remove the folder {example.parent}"
        else:
            todo = "add training examples of it, or leave it out with --keep_classes"
        raise ValueError(f"class {class_names[label]!r} has {len(rows)} example(s) in the {split_name} split of "
                         f"dataset {dataset_name!r} but none in train; {todo}")


def _image_path(split: datasets.Dataset, row: int) -> Optional[Path]:
    """The file an example's image was read from, if its input is an image with a path."""
    column = next((name for name, feature in split.features.items() if isinstance(feature, datasets.Image)), None)
    if column is None:
        return None
    value = split.select([row]).cast_column(column, datasets.Image(decode=False))[0][column]
    return Path(value["path"]) if value.get("path") else None


def _drop_unlabelled_splits(raw: datasets.DatasetDict, label_column: str) -> datasets.DatasetDict:
    """Leave out evaluation splits whose labels are all -1 (hidden labels, as in ImageNet-1k's test split)."""
    kept = {}
    for name, split in raw.items():
        labels = torch.as_tensor(label_values(split, label_column))
        if name != "train" and len(labels) and bool((labels == -1).all()):
            logger.warning("split %r has no labels (all -1); it is not used", name)
            continue
        kept[name] = split
    return datasets.DatasetDict(kept)


def _keep_classes(raw, label_column, class_names, keep):
    unknown = [name for name in keep if name not in class_names]
    if unknown:
        raise ValueError(f"keep_classes {unknown} are not class names of this dataset: {class_names}")
    new_index = {class_names.index(name): i for i, name in enumerate(keep)}
    raw = raw.filter(lambda label: label in new_index, input_columns=label_column)
    raw = raw.map(lambda row: {label_column: new_index[row[label_column]]})
    return raw.cast_column(label_column, datasets.ClassLabel(names=list(keep))), list(keep)


def load_labelled_splits(args: DataArguments, pick_inputs: Callable[[datasets.Dataset], list[str]],
                         prepare: Callable[[datasets.DatasetDict, list[str]], datasets.DatasetDict] = lambda raw, _: raw,
                         ) -> ClassificationSplits:
    """Train, validation and test splits with one list of class names.

    ``pick_inputs(train)`` names the input columns (an image, or texts); ``prepare`` adapts them
    (e.g. leaves images undecoded). test: the ``test`` split, else ``validation``, else carved
    from train. validation: a ``validation`` split that is not already the test split, else
    ``train_val_split`` of train (stratified), else (``train_val_split: 0``) the test split.
    Carving and ``max_*_samples`` use ``data_seed`` so every run sees the same data.
    """
    raw = load_raw_dataset(args.dataset_name, args.dataset_config_name)
    if "train" not in raw:
        raise ValueError(f"dataset {args.dataset_name!r} has no train split (it has {list(raw)})")
    input_columns = pick_inputs(raw["train"])
    label_column = pick_column(raw["train"], args.label_column_name, LABEL_COLUMNS, "label")
    if label_column in input_columns:
        raise ValueError(f"column {label_column!r} of {args.dataset_name} cannot be both an input and the label; "
                         "name the label column with --label_column_name")
    raw = datasets.DatasetDict(
        {name: split.select_columns([*input_columns, label_column]) for name, split in raw.items()}
    )
    class_names, raw = _class_names(raw, label_column)
    raw = _drop_unlabelled_splits(raw, label_column)
    _check_labels(raw, label_column, len(class_names))
    if args.keep_classes:
        raw, class_names = _keep_classes(raw, label_column, class_names, args.keep_classes)
    if len(class_names) < 2:
        raise ValueError(f"dataset {args.dataset_name!r} has {len(class_names)} class(es) {class_names}; "
                         "classification needs at least 2")
    _check_classes_in_train(raw, label_column, class_names, args.dataset_name)
    raw = prepare(raw, input_columns)
    train, validation, test, validation_source, skipped = assign_splits(raw, args, stratify_column=label_column)
    return ClassificationSplits(train, validation, test, class_names, input_columns, label_column, validation_source,
                                skipped)


def load_classification_splits(args: DataArguments) -> ClassificationSplits:
    """Labelled images: one image column, decoded lazily."""
    return load_labelled_splits(
        args,
        lambda train: [pick_column(train, args.image_column_name, IMAGE_COLUMNS, "image")],
        lambda raw, columns: raw.cast_column(columns[0], datasets.Image(decode=False)),
    )


def assign_splits(raw: datasets.DatasetDict, args: DataArguments, stratify_column: Optional[str] = None):
    """(train, validation, test, where validation came from, unreadable image files left out) by the rules of
    ``load_labelled_splits``. With ``skip_bad_images``, rows with an image (any ``datasets.Image`` column, so
    masks too) that does not decode are left out after truncation; a split left empty is an error."""
    train = raw["train"]
    if "test" in raw:
        test, test_source = raw["test"], "test"
    elif "validation" in raw:
        test, test_source = raw["validation"], "validation"
    else:
        train, test = _carve(train, args.train_val_split or 0.1, stratify_column, args.data_seed)
        test_source = "train"
    if "validation" in raw and test_source != "validation":
        validation, validation_source = raw["validation"], "validation split"
    elif args.train_val_split > 0:
        train, validation = _carve(train, args.train_val_split, stratify_column, args.data_seed)
        validation_source = f"{args.train_val_split:g} of train"
    else:
        validation, validation_source = test, "test split (train_val_split=0)"
    train = _truncate(train, args.max_train_samples, args.data_seed)
    validation = _truncate(validation, args.max_eval_samples, args.data_seed)
    test = _truncate(test, args.max_eval_samples, args.data_seed)
    parts = {"train": train, "validation": validation, "test": test}
    skipped: dict[str, list[str]] = {}
    if args.skip_bad_images:
        parts, skipped = _drop_unreadable_images(parts)
    for name, split in parts.items():
        if len(split) == 0:
            cause = (f" after skipping {len(skipped[name])} unreadable image(s)" if skipped.get(name)
                     else f" with keep_classes {args.keep_classes}" if args.keep_classes else "")
            raise ValueError(f"the {name} split of dataset {args.dataset_name!r} has no examples{cause}; add examples "
                             "to it or use other data")
    # Validation may be the test split itself: its files count once.
    skipped_paths = list(dict.fromkeys(path for paths in skipped.values() for path in paths))
    if skipped_paths:
        logger.warning("skip_bad_images: left out %d unreadable image(s): %s%s", len(skipped_paths),
                       ", ".join(skipped_paths[:5]), " ..." if len(skipped_paths) > 5 else "")
    return parts["train"], parts["validation"], parts["test"], validation_source, skipped_paths


def _drop_unreadable_images(parts: dict[str, datasets.Dataset]):
    """``parts`` without the rows whose images do not decode, and those rows' files (or row names) per split."""
    cleaned: dict[str, datasets.Dataset] = {}
    skipped: dict[str, list[str]] = {}
    for name, split in parts.items():
        same = next((other for other in cleaned if parts[other] is split), None)
        if same is not None:  # validation is the test split (train_val_split=0): decode it once
            cleaned[name], skipped[name] = cleaned[same], skipped[same]
            continue
        columns = [column for column, feature in split.features.items() if isinstance(feature, datasets.Image)]
        bad = _unreadable_rows(split, columns, name) if columns else {}
        cleaned[name] = split.select([i for i in range(len(split)) if i not in bad]) if bad else split
        skipped[name] = list(bad.values())
    return cleaned, skipped


def _unreadable_rows(split: datasets.Dataset, columns: list[str], name: str) -> dict[int, str]:
    """Row index -> file (or row name) of each row with an image that does not decode."""
    bad: dict[int, str] = {}
    start = 0
    # Threads, because PIL releases the GIL while it decodes.
    with ThreadPoolExecutor(max_workers=min(16, os.cpu_count() or 1)) as pool:
        for batch in split.select_columns(columns).iter(batch_size=256):
            for column in columns:
                values = batch[column]
                for offset, readable in enumerate(pool.map(_decodes, values)):
                    if not readable:
                        row = start + offset
                        path = values[offset].get("path") if isinstance(values[offset], dict) else None
                        bad.setdefault(row, path or f"row {row} of the {name} split")
            start += len(batch[columns[0]])
    return bad


def _decodes(value) -> bool:
    try:
        decode_image(value, "")
    except ValueError:
        return False
    return True


def _carve(split: datasets.Dataset, fraction: float, label_column: Optional[str], seed: int):
    feature = split.features.get(label_column) if label_column else None
    stratify = label_column if isinstance(feature, datasets.ClassLabel) else None
    try:
        parts = split.train_test_split(test_size=fraction, seed=seed, stratify_by_column=stratify)
    except ValueError:  # too few examples of some class to stratify
        parts = split.train_test_split(test_size=fraction, seed=seed)
    return parts["train"], parts["test"]


def _truncate(split: datasets.Dataset, max_samples: Optional[int], seed: int) -> datasets.Dataset:
    if max_samples is None or max_samples >= len(split):
        return split
    return split.shuffle(seed=seed).select(range(max_samples))


def decode_image(value, where: str, kind: str = "image") -> Image.Image:
    """Decode an undecoded ``datasets.Image`` value, naming the file or row when it is unreadable."""
    path = value.get("path") if isinstance(value, dict) else None
    try:
        if isinstance(value, Image.Image):
            image = value
        elif value.get("bytes") is not None:
            image = Image.open(io.BytesIO(value["bytes"]))
        else:
            image = Image.open(path)
        image.load()
        return image
    except (OSError, UnidentifiedImageError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"cannot read {kind} {path or where}: {error}") from error


class ImageDataset(EpochSeededDataset):
    """(pixel_values, label) pairs from one split, transformed on access; ``seed`` keys random transforms."""

    def __init__(self, splits: ClassificationSplits, split: str, transform: Callable[..., torch.Tensor],
                 seed: Optional[int] = None):
        self.seed = seed
        self.split = getattr(splits, split)
        self.image_column = splits.input_columns[0]
        self.label_column = splits.label_column
        self.transform = transform
        self.name = split

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        row = self.split[index]
        image = decode_image(row[self.image_column], f"row {index} of the {self.name} split")
        return self.transform(image, self.sample_generator(index)), row[self.label_column]


def same_dataset(first: str, second: str) -> bool:
    """Whether two dataset names denote the same data (``data/x``, ``./data/x/`` and ``/abs/data/x`` do)."""
    paths = [Path(name).expanduser() for name in (first, second)]
    if all(path.exists() for path in paths):
        return paths[0].resolve() == paths[1].resolve()
    return first == second


def other_dataset_arguments(run_data: DataArguments, dataset_names: Sequence[str]) -> list[DataArguments]:
    """Data arguments for evaluating on other datasets: the run's own for its dataset; others keep only its
    sampling limits (seed, split fraction, truncation, workers)."""
    inherited = {key: getattr(run_data, key) for key in ("data_seed", "train_val_split", "max_train_samples",
                                                         "max_eval_samples", "dataloader_num_workers")}
    return [dataclasses.replace(run_data) if same_dataset(name, run_data.dataset_name)
            else DataArguments(dataset_name=name, **inherited) for name in dataset_names]
