"""Frozen features of an encoder (image or text) on a dataset split, extracted once and cached on disk.

The cache key covers everything that changes the numbers: the model and its weights'
version (hub commit, or size and modification time of local weight files), the data
(name, columns, class subset, truncation, split seed), the split, the pooling and the
processor (image preprocessing, or tokenizer and max_seq_length). Files are safetensors,
written atomically.
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

import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .config import DataArguments, ModelArguments, RunConfig, expand_user
from .models import POOLING_MODES, load_encoder, pool, resolve_model_name
from .tasks import Task, frozen_feature_task

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    return Path(os.environ.get("GRPO_RM_CACHE", Path.home() / ".cache" / "grpo_rm")) / "features"


@dataclass
class FeatureSet:
    features: torch.Tensor  # [N, D]
    labels: torch.Tensor  # [N]
    cache_file: Path  # safetensors with "features" and "labels", for independent re-computation


class FeatureExtractor:
    """An encoder with its processor, producing (and caching) one pooled feature vector per example."""

    def __init__(self, model_name_or_path: str, feature_type: Optional[str] = None, image_size: Optional[int] = None,
                 batch_size: int = 64, cache_dir: Optional[str | Path] = None, show_progress: bool = True,
                 max_seq_length: Optional[int] = None):
        if feature_type is not None and feature_type not in POOLING_MODES:
            raise ValueError(f"feature_type={feature_type!r} is not one of {POOLING_MODES}")
        self.model_name_or_path = resolve_model_name(expand_user(model_name_or_path))
        self.encoder = load_encoder(self.model_name_or_path).eval()
        self.processor = self.encoder.load_processor(self.model_name_or_path, image_size=image_size,
                                                     max_seq_length=max_seq_length)
        self.feature_type = feature_type or self.encoder.default_pooling
        self.task_class = frozen_feature_task(self.encoder.modality)
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.model_version = self._model_version()
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.encoder.to(self.device)

    def protocol(self) -> dict:
        return {"feature_type": self.feature_type, **self.processor.protocol()}

    def load_data(self, data_args: DataArguments) -> Task:
        """The labelled splits of a dataset, read as this encoder's modality (images or texts)."""
        return self.task_class(RunConfig(model=ModelArguments(task=self.task_class.name), data=data_args))

    def _model_version(self) -> str:
        """The hub commit, or the size and modification time of local weight files."""
        commit = getattr(self.encoder.config, "_commit_hash", None)
        path = Path(self.model_name_or_path)
        if path.is_dir():
            files = sorted(path.glob("*.safetensors")) + sorted(path.glob("*.bin"))
            return json.dumps([(f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in files])
        return str(commit)

    def _cache_file(self, data_args: DataArguments, split: str, rows=None) -> Path:
        model = str(Path(self.model_name_or_path).resolve()) if Path(self.model_name_or_path).exists() else self.model_name_or_path
        data = dataclasses.asdict(data_args)
        if Path(data_args.dataset_name).exists():
            data["dataset_name"] = str(Path(data_args.dataset_name).resolve())
        for unused in ("random_resized_crop_scale", "hflip_prob", "dataloader_num_workers", "group_by_length",
                       "text_column_names"):
            data.pop(unused)
        # Text columns change the features; image keys stay as they were so that image caches stay valid.
        if data_args.text_column_names:
            data["text_column_names"] = data_args.text_column_names
        # The split's fingerprint changes with its files and rows (a folder regenerated in place).
        content = {"fingerprint": getattr(rows, "_fingerprint", None), "rows": len(rows)} if rows is not None else {}
        key = json.dumps({"model": model, "version": self.model_version, "data": data, "split": split,
                          **content, **self.protocol()}, sort_keys=True)
        return self.cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.safetensors"

    @torch.no_grad()
    def __call__(self, task: Task, split: str) -> FeatureSet:
        rows = getattr(task.splits, split)
        cache_file = self._cache_file(task.config.data, split, rows)
        if cache_file.is_file():
            stored = load_file(cache_file)
            if len(stored["labels"]) == len(rows):
                return FeatureSet(stored["features"], stored["labels"], cache_file)
            logger.warning("feature cache %s has %d rows for a split of %d; extracting again",
                           cache_file, len(stored["labels"]), len(rows))
        loader = task.eval_loader(split, self.processor, self.batch_size)
        features, labels = [], []
        for batch in tqdm(loader, desc=f"features {split}", leave=False, disable=not self.show_progress):
            inputs = {name: tensor.to(self.device) for name, tensor in batch["inputs"].items()}
            features.append(pool(self.encoder(**inputs), self.feature_type).float().cpu())
            labels.append(batch["labels"])
        result = FeatureSet(torch.cat(features), torch.cat(labels), cache_file)
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache_file.with_name(f".{cache_file.name}.tmp")
        save_file({"features": result.features.contiguous(), "labels": result.labels.contiguous()}, tmp)
        os.replace(tmp, cache_file)
        return result
