"""Image transforms on PIL, numpy and torch (torchvision does not import with every torch build).

Random transforms draw from the generator they are given, which the dataset derives from
(seed, epoch, sample index): a sample's crop and flip do not depend on the number of
DataLoader workers or processes, or on whether the run was resumed.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

import numpy as np
import torch
from PIL import Image

from ..processing import ImageProcessing


def to_normalized_tensor(image: Image.Image, mean: Sequence[float], std: Sequence[float]) -> torch.Tensor:
    array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
    tensor = torch.from_numpy(array).permute(2, 0, 1)
    return (tensor - torch.tensor(mean).view(3, 1, 1)) / torch.tensor(std).view(3, 1, 1)


def resize_shorter_side(image: Image.Image, size: int, resample: int) -> Image.Image:
    width, height = image.size
    scale = size / min(width, height)
    new_size = (max(size, round(width * scale)), max(size, round(height * scale)))
    return image.resize(new_size, resample=resample)


def center_crop(image: Image.Image, size: int) -> Image.Image:
    width, height = image.size
    left, top = (width - size) // 2, (height - size) // 2
    return image.crop((left, top, left + size, top + size))


def random_resized_crop_box(
    width: int, height: int, scale: Sequence[float], ratio: Sequence[float], generator: Optional[torch.Generator] = None
) -> tuple[int, int, int, int]:
    """A (left, top, right, bottom) box of random area fraction and aspect ratio (Inception-style).

    ``scale`` (1, 1) asks for the whole image: that is the fallback below, drawn from no random numbers, so
    that such a transform is deterministic (a random aspect ratio would otherwise, now and then, shave a pixel).
    """
    area = width * height
    log_ratio = (math.log(ratio[0]), math.log(ratio[1]))
    for _ in range(10 if scale[0] < 1 else 0):
        target_area = area * torch.empty(1).uniform_(scale[0], scale[1], generator=generator).item()
        aspect = math.exp(torch.empty(1).uniform_(*log_ratio, generator=generator).item())
        crop_w = int(round(math.sqrt(target_area * aspect)))
        crop_h = int(round(math.sqrt(target_area / aspect)))
        if 0 < crop_w <= width and 0 < crop_h <= height:
            left = int(torch.randint(0, width - crop_w + 1, (1,), generator=generator).item())
            top = int(torch.randint(0, height - crop_h + 1, (1,), generator=generator).item())
            return left, top, left + crop_w, top + crop_h
    # Fall back to the largest central crop within the ratio range.
    in_ratio = width / height
    if in_ratio < ratio[0]:
        crop_w, crop_h = width, int(round(width / ratio[0]))
    elif in_ratio > ratio[1]:
        crop_w, crop_h = int(round(height * ratio[1])), height
    else:
        crop_w, crop_h = width, height
    left, top = (width - crop_w) // 2, (height - crop_h) // 2
    return left, top, left + crop_w, top + crop_h


class TrainTransform:
    """Random-resized crop, horizontal flip, normalisation; grayscale becomes RGB."""

    def __init__(
        self,
        preprocessing: ImageProcessing,
        scale: Sequence[float] = (0.08, 1.0),
        ratio: Sequence[float] = (3 / 4, 4 / 3),
        hflip_prob: float = 0.5,
    ):
        if not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"random_resized_crop_scale={list(scale)} must satisfy 0 < low <= high <= 1")
        self.preprocessing = preprocessing
        self.scale = tuple(scale)
        self.ratio = tuple(ratio)
        self.hflip_prob = hflip_prob

    def __call__(self, image: Image.Image, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        image = image.convert("RGB")
        box = random_resized_crop_box(*image.size, self.scale, self.ratio, generator)
        size = self.preprocessing.image_size
        image = image.resize((size, size), resample=self.preprocessing.resample, box=box)
        if torch.rand(1, generator=generator).item() < self.hflip_prob:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return to_normalized_tensor(image, self.preprocessing.image_mean, self.preprocessing.image_std)


class EvalTransform:
    """Resize the shorter side to ``image_size / crop_pct``, center-crop, normalise."""

    def __init__(self, preprocessing: ImageProcessing):
        self.preprocessing = preprocessing

    def __call__(self, image: Image.Image, generator: Optional[torch.Generator] = None) -> torch.Tensor:
        p = self.preprocessing
        image = resize_shorter_side(image.convert("RGB"), p.resize_size, p.resample)
        image = center_crop(image, p.image_size)
        return to_normalized_tensor(image, p.image_mean, p.image_std)


def _mask_image(mask: np.ndarray) -> Image.Image:
    return Image.fromarray(mask.astype(np.int32))


class SegmentationTrainTransform:
    """The same random rescale, crop and flip for image and mask.

    The image's shorter side is resized to ``image_size * s`` with s uniform in
    ``scale_range``, both are padded to at least ``image_size`` (mask with
    ``ignore_index``), and one ``image_size`` square crop is taken from both. Masks are
    resized with nearest-neighbour and never normalised.
    """

    def __init__(self, preprocessing: ImageProcessing, scale_range: Sequence[float] = (0.5, 2.0),
                 hflip_prob: float = 0.5, ignore_index: int = 255):
        self.preprocessing = preprocessing
        self.scale_range = tuple(scale_range)
        self.hflip_prob = hflip_prob
        self.ignore_index = ignore_index

    def __call__(self, image: Image.Image, mask: np.ndarray,
                 generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, torch.Tensor]:
        p, size = self.preprocessing, self.preprocessing.image_size
        scale = torch.empty(1).uniform_(*self.scale_range, generator=generator).item()
        shorter = max(1, round(size * scale))
        image = resize_shorter_side(image.convert("RGB"), shorter, p.resample)
        mask_image = _mask_image(mask).resize(image.size, resample=Image.Resampling.NEAREST)
        width, height = image.size
        pad_w, pad_h = max(0, size - width), max(0, size - height)
        if pad_w or pad_h:
            padded = Image.new("RGB", (width + pad_w, height + pad_h))
            padded.paste(image, (0, 0))
            padded_mask = Image.new("I", padded.size, self.ignore_index)
            padded_mask.paste(mask_image, (0, 0))
            image, mask_image = padded, padded_mask
        left = int(torch.randint(0, image.width - size + 1, (1,), generator=generator).item())
        top = int(torch.randint(0, image.height - size + 1, (1,), generator=generator).item())
        box = (left, top, left + size, top + size)
        image, mask_image = image.crop(box), mask_image.crop(box)
        if torch.rand(1, generator=generator).item() < self.hflip_prob:
            image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            mask_image = mask_image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        pixels = to_normalized_tensor(image, p.image_mean, p.image_std)
        return pixels, torch.from_numpy(np.asarray(mask_image, dtype=np.int64).copy())


class SegmentationEvalTransform:
    """Resize the image's shorter side to ``image_size`` (aspect kept); the mask keeps its full resolution,
    so metrics are computed on the original labels."""

    def __init__(self, preprocessing: ImageProcessing):
        self.preprocessing = preprocessing

    def __call__(self, image: Image.Image, mask: np.ndarray,
                 generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, torch.Tensor]:
        p = self.preprocessing
        image = resize_shorter_side(image.convert("RGB"), p.image_size, p.resample)
        return to_normalized_tensor(image, p.image_mean, p.image_std), torch.from_numpy(mask.astype(np.int64))
