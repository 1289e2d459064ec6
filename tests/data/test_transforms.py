import numpy as np
import pytest
import torch
from PIL import Image

from grpo_rm.processing import ImageProcessing as Preprocessing
from grpo_rm.data.transforms import EvalTransform, TrainTransform, random_resized_crop_box


def test_eval_transform_resizes_crops_and_normalizes():
    preprocessing = Preprocessing(4, image_mean=(0.5, 0.25, 0.0), image_std=(0.5, 0.25, 1.0), crop_pct=0.5, resample=0)
    array = np.arange(8 * 16 * 3, dtype=np.uint8).reshape(8, 16, 3)
    tensor = EvalTransform(preprocessing)(Image.fromarray(array))
    # shorter side 8 -> 4/0.5 = 8 (unchanged), then the central 4x4 crop; nearest resample keeps pixels exact
    crop = array[2:6, 6:10].astype(np.float32) / 255
    expected = (crop - np.array([0.5, 0.25, 0.0])) / np.array([0.5, 0.25, 1.0])
    torch.testing.assert_close(tensor, torch.from_numpy(expected.transpose(2, 0, 1)).float())


def test_grayscale_becomes_three_channels():
    preprocessing = Preprocessing(8)
    gray = Image.fromarray(np.full((5, 7), 128, dtype=np.uint8), mode="L")
    for transform in (EvalTransform(preprocessing), TrainTransform(preprocessing)):
        out = transform(gray)
        assert out.shape == (3, 8, 8)
        torch.testing.assert_close(out[0], out[0].new_full((8, 8), (128 / 255 - 0.485) / 0.229))


def test_train_transform_is_seeded_and_flips():
    preprocessing = Preprocessing(8, resample=0)
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (8, 8, 3), dtype=np.uint8))
    torch.manual_seed(3)
    first = TrainTransform(preprocessing)(image)
    torch.manual_seed(3)
    torch.testing.assert_close(TrainTransform(preprocessing)(image), first)
    flipped = TrainTransform(preprocessing, scale=(1, 1), ratio=(1, 1), hflip_prob=1.0)(image)
    plain = EvalTransform(preprocessing)(image)
    torch.testing.assert_close(flipped, plain.flip(-1))


def test_random_resized_crop_box_stays_inside_and_respects_area():
    torch.manual_seed(0)
    for _ in range(200):
        left, top, right, bottom = random_resized_crop_box(40, 30, (0.3, 0.6), (3 / 4, 4 / 3))
        assert 0 <= left < right <= 40 and 0 <= top < bottom <= 30
        assert 0.2 <= (right - left) * (bottom - top) / 1200 <= 0.7


def test_full_scale_crop_is_the_whole_image_and_draws_nothing():
    """scale (1, 1): the whole image when its aspect ratio is in range (else the largest central crop in range),
    the same box every time, and no random number consumed."""
    generator = torch.Generator().manual_seed(0)
    state = generator.get_state()
    for width, height, expected in [(640, 480, (0, 0, 640, 480)), (500, 375, (0, 0, 500, 375)), (12, 10, (0, 0, 12, 10)),
                                    (100, 40, (23, 0, 76, 40))]:
        boxes = {random_resized_crop_box(width, height, (1.0, 1.0), (3 / 4, 4 / 3), generator) for _ in range(50)}
        assert boxes == {expected}, (width, height)
    assert torch.equal(generator.get_state(), state)


def test_bad_crop_scale():
    with pytest.raises(ValueError, match="random_resized_crop_scale"):
        TrainTransform(Preprocessing(8), scale=(0.5, 1.5))


def test_augmentation_is_a_function_of_seed_epoch_and_index(imagefolder):
    from grpo_rm.config import DataArguments
    from grpo_rm.data import ImageDataset, load_classification_splits

    splits = load_classification_splits(DataArguments(dataset_name=imagefolder))
    dataset = ImageDataset(splits, "train", TrainTransform(Preprocessing(8), (0.2, 1.0)), seed=3)
    first = [dataset[i][0] for i in (5, 0, 5)]  # any order of access, any worker: the same sample draws alike
    assert torch.equal(first[0], first[2]) and not torch.equal(first[0], first[1])
    dataset.set_epoch(1)
    assert not torch.equal(dataset[5][0], first[0])  # a new epoch, new crops
    dataset.set_epoch(0)
    assert torch.equal(dataset[5][0], first[0])
    other_seed = ImageDataset(splits, "train", TrainTransform(Preprocessing(8), (0.2, 1.0)), seed=4)
    assert not torch.equal(other_seed[5][0], first[0])
