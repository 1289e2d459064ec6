"""Tiny models and datasets written to disk, so tests go through the same loading code as users."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
# One thread per test process (and per subprocess a test starts): the suite runs in two processes on two cores
# (pytest-xdist, pyproject.toml), which more threads would oversubscribe; and float32 numbers then do not depend on
# the machine's core count.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import datasets  # noqa: E402
import torch  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import (  # noqa: E402
    Dinov2Config,
    Dinov2Model,
    Dinov2WithRegistersConfig,
    Dinov2WithRegistersModel,
    ViTConfig,
    ViTModel,
)

from grpo_rm.processing import ImageProcessing as Preprocessing  # noqa: E402

torch.set_num_threads(1)

TINY = dict(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32, patch_size=4, image_size=16)


def save_tiny(model, directory, processor=True):
    model.save_pretrained(directory)
    if processor:
        Preprocessing(16, image_mean=(0.5,) * 3, image_std=(0.5,) * 3).save_pretrained(directory)
    return str(directory)


@pytest.fixture(scope="session")
def tiny_dinov2(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    return save_tiny(Dinov2Model(Dinov2Config(**TINY)), tmp_path_factory.mktemp("tiny-dinov2"))


@pytest.fixture(scope="session")
def tiny_dinov2_registers(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    config = Dinov2WithRegistersConfig(**TINY, num_register_tokens=4)
    return save_tiny(Dinov2WithRegistersModel(config), tmp_path_factory.mktemp("tiny-dinov2-reg"))


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    return save_tiny(ViTModel(ViTConfig(**TINY)), tmp_path_factory.mktemp("tiny-vit"), processor=False)


def make_images(rng, count, size=(12, 10), mode="RGB"):
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    return [Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode=mode) for _ in range(count)]


def colour_image(rng, label, size=(12, 12)):
    """A noisy image whose dominant colour channel is its class: learnable in a few steps."""
    array = rng.integers(0, 60, (size[1], size[0], 3), dtype=np.uint8)
    array[..., label] += 180
    return Image.fromarray(array)


@pytest.fixture(scope="session")
def imagefolder(tmp_path_factory):
    """train/ and val/ with classes red, green, blue (coloured noise)."""
    root = tmp_path_factory.mktemp("imagefolder")
    rng = np.random.default_rng(0)
    for split, count in (("train", 16), ("val", 6)):
        for label, name in enumerate(("blue", "green", "red")):
            channel = {"red": 0, "green": 1, "blue": 2}[name]
            (root / split / name).mkdir(parents=True)
            for i in range(count):
                colour_image(rng, channel).save(root / split / name / f"{i}.png")
    return str(root)


@pytest.fixture(scope="session")
def parquet_folder(tmp_path_factory):
    """train.parquet and test.parquet with an Image feature and a ClassLabel, like the shared MNIST subset."""
    root = tmp_path_factory.mktemp("parquet")
    rng = np.random.default_rng(1)
    features = datasets.Features({"img": datasets.Image(), "digit": datasets.ClassLabel(names=["r", "g", "b"])})
    for split, count in (("train", 30), ("test", 12)):
        labels = [i % 3 for i in range(count)]
        images = [colour_image(rng, label) for label in labels]
        datasets.Dataset.from_dict({"img": images, "digit": labels}, features=features).to_parquet(
            str(root / f"{split}.parquet")
        )
    return str(root)


@pytest.fixture(scope="session")
def small_dinov2(tmp_path_factory):
    """A little wider than ``tiny_dinov2``: enough to learn digits-seg in a few epochs."""
    import torch

    torch.manual_seed(0)
    config = Dinov2Config(hidden_size=48, num_hidden_layers=3, num_attention_heads=3, intermediate_size=96,
                          patch_size=4, image_size=32)
    return save_tiny(Dinov2Model(config), tmp_path_factory.mktemp("small-dinov2"), processor=False)


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory):
    from tests.text_fixtures import save_tiny_bert

    return save_tiny_bert(tmp_path_factory.mktemp("tiny-bert"))


@pytest.fixture(scope="session")
def tiny_distilbert(tmp_path_factory):
    from tests.text_fixtures import save_tiny_distilbert

    return save_tiny_distilbert(tmp_path_factory.mktemp("tiny-distilbert"))


@pytest.fixture(scope="session")
def text_parquet(tmp_path_factory):
    """train.parquet / test.parquet: 3 learnable topics (sports, food, tech), a ClassLabel column."""
    from tests.text_fixtures import write_text_dataset

    return write_text_dataset(tmp_path_factory.mktemp("text-parquet"), kind="parquet")


@pytest.fixture(scope="session")
def text_csv(tmp_path_factory):
    from tests.text_fixtures import write_text_dataset

    return write_text_dataset(tmp_path_factory.mktemp("text-csv"), kind="csv")


@pytest.fixture(scope="session")
def text_pairs(tmp_path_factory):
    """premise / hypothesis pairs labelled same / different topic."""
    from tests.text_fixtures import write_text_dataset

    return write_text_dataset(tmp_path_factory.mktemp("text-pairs"), kind="parquet", pair=True)


# Runs of `grpo-rm train` in two processes (torchrun, gloo on CPU), launched once for the whole session; the tests
# that check them against one process live with what they test (commands, tasks, training, representation).
TWO_PROCESS_COMMON = ["--report_to", "none", "--disable_tqdm"]


@pytest.fixture(scope="session")
def two_process_runs(tmp_path_factory, tiny_dinov2, imagefolder):
    """Launched once for the whole suite, whichever test process asks first (pytest-xdist's recipe for a session
    fixture: a folder all test processes share, and a lock); the others wait and read its runs. Each test process
    made its own tiny_dinov2 from the same seed, so the runs compare with any process's references."""
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent  # the same folder for every test process of this session
    root = shared / "two-process"
    runs = {name: root / name for name in ("image", "segmentation", "cached_features")}
    paths = {**runs, "generic": root / "generic", "feature_cache": root / "feature-cache"}
    with FileLock(str(shared / "two-process.lock")):
        if not (root / "done").is_file():
            _launch_two_process_runs(root, runs, tiny_dinov2, imagefolder)
            (root / "done").touch()
    return paths


def _launch_two_process_runs(root, runs, tiny_dinov2, imagefolder):
    import json
    import shutil
    import subprocess
    import sys

    import yaml

    from tests.seg_fixtures import write_generic

    if root.exists():
        shutil.rmtree(root)  # left by a launch that failed
    generic = write_generic(root / "generic")
    (root / "cached.yaml").write_text(yaml.safe_dump(CACHED_FEATURES_RUN))
    commands = [
        # Uneven evaluation: 25 test digits, and 18 imagefolder test images in batches of 4 (the last round of the
        # frozen-feature extraction leaves one process without a batch).
        ["train", "--method", "grpo-rm", "--model_name_or_path", tiny_dinov2, "--dataset_name", "digits",
         "--output_dir", str(runs["image"]), "--max_train_samples", "64", "--max_eval_samples", "25",
         "--max_train_steps", "4", "--per_device_train_batch_size", "8", "--image_size", "16",
         "--random_resized_crop_scale", "0.8", "1.0", "--warmup_ratio", "0", "--per_device_eval_batch_size", "4",
         "--eval_datasets", imagefolder, "--knn_k", "3", "--probe_epochs", "3",
         "--feature_cache_dir", str(root / "feature-cache"), *TWO_PROCESS_COMMON],
        # BatchNorm in the segmentation head: buffers shared from rank 0 before evaluation and saving.
        ["train", "--task", "segmentation", "--method", "grpo-rm", "--model_name_or_path", tiny_dinov2,
         "--dataset_name", str(generic), "--output_dir", str(runs["segmentation"]), "--max_train_steps", "3",
         "--per_device_train_batch_size", "4", "--image_size", "32", "--hflip_prob", "0", "--seg_scale_range", "0.8",
         "1.2", "--warmup_ratio", "0.05", *TWO_PROCESS_COMMON],
        # A frozen encoder's cached features: each process holds all of them, whatever batches it is dealt.
        ["train", "--model_name_or_path", tiny_dinov2, "--output_dir", str(runs["cached_features"]),
         "--config", str(root / "cached.yaml"), "--cache_frozen_features"],
    ]
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    script = os.path.join(os.path.dirname(__file__), "two_process_runs.py")
    # One thread per process, as in the one-process references: CPU kernels round differently with more threads.
    result = subprocess.run([torchrun, "--nproc_per_node", "2", script, json.dumps(commands)], capture_output=True,
                            text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-4000:]


# The cached-features run above and its one-process references (tests/training/test_feature_cache.py): 64 digits,
# two steps of 32 examples an epoch whether one process reads batches of 32 or two read batches of 16.
CACHED_FEATURES_RUN = dict(dataset_name="digits", max_train_samples=64, max_eval_samples=24,
                           per_device_train_batch_size=16, num_train_epochs=2, logging_steps=1, learning_rate=1e-2,
                           disable_tqdm=True, report_to="none", freeze_backbone=True,
                           random_resized_crop_scale=[1.0, 1.0], hflip_prob=0.0)
