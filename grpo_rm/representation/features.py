"""Frozen features of an encoder (image or text) on a dataset split, extracted once and cached on disk.

The cache key covers everything that changes the numbers: the model and its weights'
version (hub commit, or a checksum of local or in-memory weights), the data
(name, columns, class subset, truncation, split seed), the split, the pooling and the
processor (image preprocessing, or tokenizer and max_seq_length). Files are safetensors,
written atomically.

Extraction is shared between the processes of a distributed run (the training run's, or the one
``grpo-rm knn`` forms under torchrun): each computes every N-th batch, and every process ends with
all features, in order, with the same numbers as one process alone.

A frozen encoder's features of the training set are extracted the same way, once per run and kept in
memory, for training the head on them (``--cache_frozen_features``, ``cached_training_loader``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch
from accelerate import Accelerator, PartialState
from accelerate.utils import gather
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from ..models import POOLING_MODES, EncoderWithHead, load_encoder, pool, resolve_model_name
from ..models.encoders import Encoder, pooled_dim

logger = logging.getLogger(__name__)


def default_cache_dir() -> Path:
    return Path(os.environ.get("GRPO_RM_CACHE", Path.home() / ".cache" / "grpo_rm")) / "features"


@dataclass
class FeatureSet:
    features: torch.Tensor  # [N, D]
    labels: torch.Tensor  # [N]
    cache_file: Path  # safetensors with "features" and "labels", for independent re-computation


@dataclass
class LabelledData:
    """One labelled dataset as frozen-feature evaluation reads it: a loader per split, and for each split what
    identifies its examples in the feature cache (data settings, file fingerprint, rows). The tasks layer makes
    these (``grpo_rm.tasks.labelled_data``); nothing here knows how a dataset is read."""

    name: str
    class_names: list[str]
    loaders: dict[str, DataLoader]  # "train", "validation", "test"
    cache_keys: dict[str, dict]
    validation_source: str  # where the validation split came from (a split of its own, or carved from train)


class FeatureExtractor:
    """An encoder with its processor, producing (and caching) one pooled feature vector per example.

    Every process of the current run (accelerate's ``PartialState``) must make the same calls.
    """

    def __init__(self, encoder: Encoder, processor, model_id: str, model_version: str,
                 feature_type: Optional[str] = None, cache_dir: Optional[str | Path] = None,
                 show_progress: bool = True, checksummed: bool = False):
        if feature_type is not None and feature_type not in POOLING_MODES:
            raise ValueError(f"feature_type={feature_type!r} is not one of {POOLING_MODES}")
        self.encoder = encoder
        self.processor = processor
        self.model_id = model_id
        self.model_version = model_version
        self.checksummed = checksummed  # model_version is a checksum of the weights
        self.feature_type = feature_type or encoder.default_pooling
        self.show_progress = show_progress
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        self.state = PartialState()
        self.was_training = encoder.training
        self.encoder.to(self.state.device)

    @classmethod
    def from_pretrained(cls, model_name_or_path: str, feature_type: Optional[str] = None,
                        image_size: Optional[int] = None, max_seq_length: Optional[int] = None,
                        cache_dir: Optional[str | Path] = None, show_progress: bool = True) -> "FeatureExtractor":
        """The encoder of a hub id, a ``save_pretrained`` folder, a grpo-rm run or an alias (``minilm``)."""
        name = resolve_model_name(model_name_or_path)
        encoder = load_encoder(name).eval()
        processor = encoder.load_processor(name, image_size=image_size, max_seq_length=max_seq_length)
        local = Path(name).exists()
        model_id = str(Path(name).resolve()) if local else name
        # A hub checkpoint is versioned by its commit; local weights by their checksum, so that a run's encoder
        # finds the features computed from it in memory right after training.
        version = weights_checksum(encoder) if local else str(getattr(encoder.config, "_commit_hash", None))
        return cls(encoder, processor, model_id, version, feature_type, cache_dir, show_progress, checksummed=local)

    @classmethod
    def for_model(cls, model: EncoderWithHead, model_id: str, feature_type: Optional[str] = None,
                  cache_dir: Optional[str | Path] = None, show_progress: bool = True) -> "FeatureExtractor":
        """The encoder of a model in memory (a run just trained), read with its own processor; its weights'
        checksum keys the cache. Call ``restore_mode`` when done to give the encoder back its train/eval mode."""
        encoder = model.encoder
        extractor = cls(encoder, model.processor, model_id, weights_checksum(encoder), feature_type, cache_dir,
                        show_progress, checksummed=True)
        encoder.eval()
        return extractor

    def restore_mode(self) -> None:
        self.encoder.train(self.was_training)

    @property
    def modality(self) -> str:
        return self.encoder.modality

    def protocol(self) -> dict:
        return {"feature_type": self.feature_type, **self.processor.protocol()}

    def _cache_file(self, data: LabelledData, split: str) -> Path:
        # Weights known by their checksum need no name: the same weights anywhere (a run, its best_model/, its
        # WiSE-FT alpha 1) find the same features. A hub checkpoint is its name and commit.
        model = ({"version": self.model_version} if self.checksummed else
                 {"model": self.model_id, "version": self.model_version})
        key = json.dumps({**model, **data.cache_keys[split], **self.protocol()}, sort_keys=True)
        return self.cache_dir / f"{hashlib.sha256(key.encode()).hexdigest()[:24]}.safetensors"

    @torch.no_grad()
    def __call__(self, data: LabelledData, split: str) -> FeatureSet:
        loader = data.loaders[split]
        cache_file = self._cache_file(data, split)
        stored = self._read_cache(cache_file, len(loader.dataset))
        # Every process takes the same branch: extraction is collective, and another process's
        # disk may not hold the file (yet).
        if bool(gather(torch.tensor([stored is not None], device=self.state.device)).all()):
            return FeatureSet(stored["features"], stored["labels"], cache_file)
        features, labels = extract_features(loader,
                                            lambda inputs: pool(self.encoder(**inputs), self.feature_type).float(),
                                            pooled_dim(self.encoder.hidden_size, self.feature_type),
                                            f"features {split}", self.show_progress)
        if self.state.is_main_process:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache_file.with_name(f".{cache_file.name}.tmp")
            save_file({"features": features.contiguous(), "labels": labels.contiguous()}, tmp)
            os.replace(tmp, cache_file)
        return FeatureSet(features, labels, cache_file)

    @staticmethod
    def _read_cache(cache_file: Path, rows: int) -> Optional[dict[str, torch.Tensor]]:
        if not cache_file.is_file():
            return None
        stored = load_file(cache_file)
        if len(stored["labels"]) == rows:
            return stored
        logger.warning("feature cache %s has %d rows for a split of %d; extracting again",
                       cache_file, len(stored["labels"]), rows)
        return None


def weights_checksum(encoder: Encoder) -> str:
    """A digest of the encoder's weights: the same weights (in memory or reloaded) find the same features."""
    digest = hashlib.sha256()
    for name, tensor in sorted(encoder.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


@torch.no_grad()
def extract_features(loader: DataLoader, features_of: Callable[[dict[str, torch.Tensor]], torch.Tensor], width: int,
                     description: str, show_progress: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Features [N, width] (``features_of`` a batch's inputs, on the device) and labels of the loader's examples, in
    order, in every process; process p computes batches p, p + N, ...

    Each batch is the one a single process forms (same examples, same text padding), so the
    features do not depend on the number of processes, and no example is computed twice
    (accelerate's even batches would fill the last batch up with repeats). Each round of N batches
    is gathered as it is done, which keeps device memory to a batch per process.
    """
    state = PartialState()
    processes, rank, device = state.num_processes, state.process_index, state.device
    batches = list(loader.batch_sampler)
    own = iter(DataLoader(loader.dataset, batch_sampler=batches[rank::processes], collate_fn=loader.collate_fn,
                          num_workers=loader.num_workers, pin_memory=loader.pin_memory,
                          prefetch_factor=loader.prefetch_factor))
    # A process left without a batch in the last round sends no rows.
    no_features = torch.zeros(0, width, device=device)
    no_labels = torch.zeros(0, dtype=torch.long, device=device)
    features, labels = [], []
    for first in tqdm(range(0, len(batches), processes), desc=description, leave=False,
                      disable=not (show_progress and state.is_local_main_process)):
        sizes = [len(batch) for batch in batches[first : first + processes]]
        sizes += [0] * (processes - len(sizes))
        own_features, own_labels = no_features, no_labels
        if sizes[rank]:
            batch = next(own)
            own_features = features_of({name: tensor.to(device) for name, tensor in batch["inputs"].items()})
            own_labels = batch["labels"].to(device)
        features.append(_gather_round(own_features, sizes).cpu())
        labels.append(_gather_round(own_labels, sizes).cpu())
    return torch.cat(features), torch.cat(labels)


def _gather_round(tensor: torch.Tensor, sizes: list[int]) -> torch.Tensor:
    """Every process's rows, in process order; ``sizes`` (known to all) says how many each has."""
    longest = max(sizes)
    padded = torch.cat([tensor, tensor.new_zeros(longest - len(tensor), *tensor.shape[1:])])
    return torch.cat([part[:size] for part, size in zip(gather(padded).split(longest), sizes)])


class CachedFeatures(Dataset):
    """Training examples as the frozen encoder saw them: (pooled feature vector, label), by the dataset's index."""

    def __init__(self, features: torch.Tensor, labels: torch.Tensor):
        self.features, self.labels = features, labels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.features[index], self.labels[index]

    def __getitems__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch in one indexing (DataLoader fetches batches this way when it can): at a linear probe's
        speed, one Python call per example would be the cost that is left."""
        return self.features[indices], self.labels[indices]


def cached_training_loader(model: EncoderWithHead, loader: DataLoader, accelerator: Accelerator,
                           show_progress: bool = True) -> DataLoader:
    """``loader``'s batches (same sampler, so the same order and batches for every seed and epoch) with the frozen
    encoder's features in place of the inputs: ``{"inputs": {"encoder_output": ...}, "labels": ...}``, which
    ``EncoderWithHead.forward`` takes as it takes inputs.

    The encoder runs once, here, over the training set: in eval mode, as a linear probe reads features (and as
    the training loop runs a frozen encoder), under the run's autocast, in batches of the training batch size
    (so the numbers do not depend on an evaluation setting a resumed run may change). Every process extracts
    its share and gathers all, as ``extract_features`` does: whichever batches accelerate deals a process in an
    epoch, it holds their features. Only for inputs that are the same every epoch (no random augmentation).
    """
    extraction = DataLoader(loader.dataset, batch_size=loader.batch_size, collate_fn=loader.collate_fn,
                            num_workers=loader.num_workers, pin_memory=loader.pin_memory,
                            prefetch_factor=loader.prefetch_factor)

    def features_of(inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        with accelerator.autocast():
            # float32 holds a half-precision output exactly; the head's autocast casts it back as it would have.
            return model.pooled_features(**inputs).float()

    was_training = model.encoder.training
    model.encoder.eval()
    try:
        features, labels = extract_features(extraction, features_of,
                                            pooled_dim(model.encoder.hidden_size, model.head.pooling),
                                            "frozen features train", show_progress)
    finally:
        model.encoder.train(was_training)

    def collate(batch: tuple[torch.Tensor, torch.Tensor]) -> dict:
        vectors, labels = batch
        return {"inputs": {"encoder_output": model.as_encoder_output(vectors)}, "labels": labels}

    return DataLoader(CachedFeatures(features, labels), batch_size=loader.batch_size, sampler=loader.sampler,
                      drop_last=loader.drop_last, collate_fn=collate, pin_memory=loader.pin_memory)
