"""Frozen features of an encoder on a dataset split, extracted once and cached on disk.

The cache key covers everything that changes the numbers: the model and its weights'
version (hub commit, or size and modification time of local weight files), the data
(name, columns, class subset, truncation, split seed), the split, the feature type and
the preprocessing. Files are safetensors, written atomically.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import datasets
import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .backbones import Encoder, Preprocessing, default_image_size, load_encoder
from .config import DataArguments, expand_user
from .data import ClassificationSplits, EvalTransform, ImageDataset
from .heads import image_features

logger = logging.getLogger(__name__)

FEATURE_TYPES = ("cls", "cls+mean")


def default_cache_dir() -> Path:
    return Path(os.environ.get("GRPO_RM_CACHE", Path.home() / ".cache" / "grpo_rm")) / "features"


@dataclass
class FeatureSet:
    features: torch.Tensor  # [N, D]
    labels: torch.Tensor  # [N]
    cache_file: Path  # safetensors with "features" and "labels", for independent re-computation


class FeatureExtractor:
    """An encoder with its preprocessing, producing (and caching) one feature vector per image."""

    def __init__(self, model_name_or_path: str, feature_type: str = "cls", image_size: Optional[int] = None,
                 batch_size: int = 64, cache_dir: Optional[str | Path] = None, show_progress: bool = True):
        if feature_type not in FEATURE_TYPES:
            raise ValueError(f"feature_type={feature_type!r} is not one of {FEATURE_TYPES}")
        self.model_name_or_path = expand_user(model_name_or_path)
        self.encoder: Encoder = load_encoder(self.model_name_or_path).eval()
        self.preprocessing = Preprocessing.from_pretrained(
            self.model_name_or_path, default_image_size(self.encoder)
        ).with_image_size(image_size)
        self.encoder.check_image_size(self.preprocessing.image_size)
        self.feature_type = feature_type
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.model_version = self._model_version()
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.encoder.to(self.device)

    def protocol(self) -> dict:
        return {"feature_type": self.feature_type, "image_size": self.preprocessing.image_size,
                "preprocessing": self.preprocessing.to_processor_dict()}

    def _model_version(self) -> str:
        """The hub commit, or the size and modification time of local weight files."""
        commit = getattr(self.encoder.config, "_commit_hash", None)
        path = Path(self.model_name_or_path)
        if path.is_dir():
            files = sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin"))
            return json.dumps([(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files])
        return str(commit)

    def _cache_file(self, data_args: DataArguments, split: str, rows: Optional[datasets.Dataset] = None) -> Path:
        model = str(Path(self.model_name_or_path).resolve()) if Path(self.model_name_or_path).exists() else self.model_name_or_path
        data = dataclasses.asdict(data_args)
        if Path(data_args.dataset_name).exists():
            data["dataset_name"] = str(Path(data_args.dataset_name).resolve())
        for augmentation_only in ("random_resized_crop_scale", "hflip_prob", "dataloader_num_workers"):
            data.pop(augmentation_only)
        # The split's fingerprint changes with its files and rows (a folder regenerated in place).
        content = {"fingerprint": getattr(rows, "_fingerprint", None), "rows": len(rows)} if rows is not None else {}
        key = json.dumps({"model": model, "version": self.model_version, "data": data, "split": split,
                          **content, **self.protocol()}, sort_keys=True)
        return self.cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.safetensors"

    @torch.no_grad()
    def __call__(self, splits: ClassificationSplits, split: str, data_args: DataArguments) -> FeatureSet:
        rows = getattr(splits, split)
        cache_file = self._cache_file(data_args, split, rows)
        if cache_file.is_file():
            stored = load_file(cache_file)
            if len(stored["labels"]) == len(rows):
                return FeatureSet(stored["features"], stored["labels"], cache_file)
            logger.warning("feature cache %s has %d rows for a split of %d; extracting again",
                           cache_file, len(stored["labels"]), len(rows))
        dataset = ImageDataset(rows, splits.image_column, splits.label_column,
                               EvalTransform(self.preprocessing), split)
        loader = DataLoader(dataset, batch_size=self.batch_size, shuffle=False,
                            num_workers=data_args.dataloader_num_workers)
        features, labels = [], []
        for pixel_values, batch_labels in tqdm(loader, desc=f"features {split}", leave=False, disable=not self.show_progress):
            output = self.encoder(pixel_values.to(self.device))
            features.append(image_features(output, self.feature_type).float().cpu())
            labels.append(batch_labels)
        result = FeatureSet(torch.cat(features), torch.cat(labels), cache_file)
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(f".{cache_file.name}.tmp")
        save_file({"features": result.features.contiguous(), "labels": result.labels.contiguous()}, tmp)
        os.replace(tmp, cache_file)
        return result
