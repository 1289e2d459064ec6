"""Segmentation end to end: the same `grpo-rm train` with --task segmentation, eval, inference, pictures."""

import json

import numpy as np
import pytest
import torch

from grpo_rm.cli import main
from grpo_rm.config import DataArguments
from grpo_rm.data.segmentation import decode_mask, load_segmentation_splits
from grpo_rm.evaluation import predict_segmentation
from grpo_rm.models import EncoderWithHead
from tests.seg_fixtures import write_generic, write_voc

COMMON = ["--task", "segmentation", "--report_to", "none", "--disable_tqdm", "--image_size", "32",
          "--hflip_prob", "0", "--seg_scale_range", "0.8", "1.2", "--warmup_ratio", "0.05"]


def all_background_miou(dataset_name: str, max_eval_samples: int) -> float:
    """mIoU of predicting background everywhere: background IoU (its pixel share) over the classes present."""
    splits = load_segmentation_splits(DataArguments(dataset_name=dataset_name, max_eval_samples=max_eval_samples))
    masks = np.concatenate([decode_mask(splits.test[i]["mask"], str(i)).ravel() for i in range(len(splits.test))])
    present = len(np.unique(masks[masks != 255]))
    return float((masks == 0).mean()) / present


def test_per_pixel_grpo_rm_beats_all_background_and_eval_reproduces(tmp_path, small_dinov2):
    # GRPO-RM over pixels is the new path; cross-entropy's per-pixel loss is tested against torch in test_objective.
    method = "grpo-rm"
    run = tmp_path / method
    assert main(["train", "--method", method, "--model_name_or_path", small_dinov2, "--dataset_name", "digits-seg",
                 "--output_dir", str(run), "--num_train_epochs", "6", "--max_train_samples", "256",
                 "--max_eval_samples", "60", "--per_device_train_batch_size", "16", "--learning_rate", "2e-3",
                 "--head_learning_rate", "2e-2", *COMMON]) == 0
    reported = json.loads((run / "all_results.json").read_text())
    baseline = all_background_miou("digits-seg", 60)
    # Measured margins over background-everywhere (0.072): 0.040-0.048 for both methods and two seeds each.
    assert reported["eval_mean_iou"] > baseline + 0.025, (reported["eval_mean_iou"], baseline)
    assert {"eval_mean_accuracy", "eval_overall_accuracy", "eval_per_category_iou"} <= set(reported)
    assert len(reported["eval_per_category_iou"]) == 11
    assert main(["eval", "--model_name_or_path", str(run), "--dataset_name", "digits-seg",
                 "--output_dir", str(tmp_path / "eval")]) == 0
    evaluated = json.loads((tmp_path / "eval" / "eval_results.json").read_text())
    assert evaluated["eval_mean_iou"] == reported["eval_mean_iou"]


def test_voc_folder_trains_and_generic_folder_evaluates(tmp_path, tiny_dinov2):
    voc = write_voc(tmp_path / "voc", train=6, val=3)
    run = tmp_path / "voc-run"
    assert main(["train", "--method", "grpo-rm", "--model_name_or_path", tiny_dinov2, "--dataset_name", str(voc),
                 "--output_dir", str(run), "--max_train_steps", "1", "--per_device_train_batch_size", "4",
                 "--seg_num_layers", "2", *COMMON]) == 0
    results = json.loads((run / "all_results.json").read_text())
    assert results["total_steps"] == 1 and len(results["eval_per_category_iou"]) == 21

    generic = write_generic(tmp_path / "generic")
    run = tmp_path / "generic-run"
    assert main(["train", "--method", "ce", "--model_name_or_path", tiny_dinov2, "--dataset_name", str(generic),
                 "--output_dir", str(run), "--max_train_steps", "2", "--seg_inference", "slide",
                 "--slide_stride", "8", *COMMON]) == 0
    reported = json.loads((run / "all_results.json").read_text())["eval_mean_iou"]
    assert main(["eval", "--model_name_or_path", str(run), "--output_dir", str(tmp_path / "e")]) == 0
    assert json.loads((tmp_path / "e" / "eval_results.json").read_text())["eval_mean_iou"] == reported


def test_inference_modes(tmp_path, tiny_dinov2):
    from grpo_rm.config import ModelArguments
    from grpo_rm.tasks import build_model

    model = build_model(ModelArguments(model_name_or_path=tiny_dinov2, task="segmentation"), ["a", "b", "c"]).eval()
    with torch.no_grad():
        square = torch.randn(3, 16, 16)
        torch.testing.assert_close(predict_segmentation(model, square, "slide"), predict_segmentation(model, square))
        odd = torch.randn(3, 18, 30)  # not a multiple of the patch size: padded, then cropped back
        whole = predict_segmentation(model, odd)
        assert whole.shape == (3, 18, 30)
        slide = predict_segmentation(model, odd, "slide", stride=4)
        assert slide.shape == (3, 18, 30) and torch.isfinite(slide).all()
        # Windows start at rows {0, 2} and columns {0, 4, 8, 12, 14}: only the first covers rows 0-1, columns 0-3.
        corner = model(pixel_values=odd[None, :, :16, :16])[0]
        torch.testing.assert_close(slide[:, :2, :4], corner[:, :2, :4])


def test_visualize_writes_a_panel(tmp_path, tiny_dinov2):
    voc = write_voc(tmp_path / "voc", train=4, val=3)
    runs = []
    for method in ("ce", "grpo-rm"):
        run = tmp_path / method
        main(["train", "--method", method, "--model_name_or_path", tiny_dinov2, "--dataset_name", str(voc),
              "--output_dir", str(run), "--max_train_steps", "1", *COMMON])
        runs.append(str(run))
    assert main(["visualize", "--model_name_or_path", *runs, "--num_images", "2", "--output_dir",
                 str(tmp_path / "vis")]) == 0
    from PIL import Image

    panel = Image.open(tmp_path / "vis" / "predictions.png")
    assert panel.width > 4 * 150 and panel.height > 2 * 150  # 4 columns (input, truth, 2 runs), 2 rows
    with pytest.raises(ValueError, match="visualize shows segmentation predictions"):
        from grpo_rm.commands.visualize import visualize_runs
        from grpo_rm.commands.train import run_training
        from tests.training.test_loop import tiny_config

        run_training(tiny_config(tiny_dinov2, tmp_path / "cls", max_train_steps=1))
        visualize_runs([str(tmp_path / "cls")], None, str(tmp_path / "vis2"))
    assert EncoderWithHead.from_pretrained(runs[0]).task == "image-segmentation"


def test_saved_predictions_reproduce_the_reported_miou_independently(tmp_path, tiny_dinov2):
    from PIL import Image

    generic = write_generic(tmp_path / "generic")
    run = tmp_path / "run"
    assert main(["train", "--method", "grpo-rm", "--model_name_or_path", tiny_dinov2, "--dataset_name", str(generic),
                 "--output_dir", str(run), "--max_train_steps", "3", *COMMON]) == 0
    reported = json.loads((run / "all_results.json").read_text())
    index = json.loads((run / "test_predictions" / "index.json").read_text())
    assert len(index) == 6
    intersection, union = np.zeros(3), np.zeros(3)
    for entry in index:
        prediction = np.asarray(Image.open(run / "test_predictions" / entry["prediction"]))
        truth = np.asarray(Image.open(entry["mask"]))
        valid = truth != 255
        for c in range(3):
            p, t = (prediction == c) & valid, (truth == c) & valid
            intersection[c] += (p & t).sum()
            union[c] += (p | t).sum()
    present = union > 0
    assert reported["eval_mean_iou"] == pytest.approx((intersection[present] / union[present]).mean(), abs=1e-9)


def test_slide_stride_larger_than_the_window_is_refused(tiny_dinov2):
    from grpo_rm.config import ModelArguments
    from grpo_rm.tasks import build_model

    model = build_model(ModelArguments(model_name_or_path=tiny_dinov2, task="segmentation"), ["a", "b"]).eval()
    with pytest.raises(ValueError, match="slide_stride 20 must be in"):
        predict_segmentation(model, torch.randn(3, 16, 48), "slide", stride=20)


def test_two_process_segmentation_with_batchnorm_matches_eval(two_process_runs, tmp_path):
    run = two_process_runs["segmentation"]
    reported = json.loads((run / "all_results.json").read_text())
    assert main(["eval", "--model_name_or_path", str(run), "--output_dir", str(tmp_path / "e")]) == 0
    assert json.loads((tmp_path / "e" / "eval_results.json").read_text())["eval_mean_iou"] == reported["eval_mean_iou"]
    assert len(json.loads((run / "test_predictions" / "index.json").read_text())) == 6


def write_mixed_sizes(root, seed: int = 2):
    """A generic folder whose test images have different sizes: several pad to one size, others to their own."""
    from PIL import Image

    from tests.seg_fixtures import squares

    rng = np.random.default_rng(seed)
    # (height, width); with image_size 16 and patch 4: 32x40 and 32x38 both pad to 16x20 (from 16x20 and 16x19).
    sizes = {"train": [(32, 32)] * 2,
             "test": [(32, 40), (32, 32), (40, 32), (32, 38), (30, 45), (32, 40), (28, 50), (32, 32), (32, 38)]}
    for split, shapes in sizes.items():
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for i, (height, width) in enumerate(shapes):
            image, mask = squares(rng, size=max(height, width))
            Image.fromarray(image[:height, :width]).save(root / split / "images" / f"{i}.png")
            Image.fromarray(mask[:height, :width]).save(root / split / "masks" / f"{i}.png")
    (root / "classes.txt").write_text("background\nred\ngreen\n")
    return root


def one_image_at_a_time(model, pixel_values: torch.Tensor, mode: str, stride: int) -> torch.Tensor:
    """The per-image inference that batched evaluation replaces, written out plainly as the reference."""
    patch, window = model.encoder.patch_size, model.processor.image_size
    height, width = pixel_values.shape[-2:]
    if mode == "whole":
        padded = torch.nn.functional.pad(pixel_values, (0, -width % patch, 0, -height % patch))
        return model(pixel_values=padded[None])[0, :, :height, :width]
    padded = torch.nn.functional.pad(pixel_values, (0, max(0, window - width), 0, max(0, window - height)))
    full_h, full_w = padded.shape[-2:]
    logits = torch.zeros(len(model.class_names), full_h, full_w)
    counts = torch.zeros(1, full_h, full_w)
    for top in sorted({*range(0, full_h - window + 1, stride), full_h - window}):
        for left in sorted({*range(0, full_w - window + 1, stride), full_w - window}):
            logits[:, top : top + window, left : left + window] += model(
                pixel_values=padded[None, :, top : top + window, left : left + window])[0]
            counts[:, top : top + window, left : left + window] += 1
    return (logits / counts)[:, :height, :width]


@pytest.mark.parametrize("mode", ["whole", "slide"])
def test_batched_evaluation_matches_one_image_at_a_time(tmp_path, tiny_dinov2, mode):
    from PIL import Image

    from grpo_rm.config import ModelArguments, RunConfig
    from grpo_rm.evaluation import evaluate_segmenter
    from grpo_rm.runtime import make_accelerator
    from grpo_rm.tasks import build_task

    folder = write_mixed_sizes(tmp_path / "mixed")
    config = RunConfig(model=ModelArguments(model_name_or_path=tiny_dinov2, task="segmentation"),
                       data=DataArguments(dataset_name=str(folder)))
    task = build_task(config)
    torch.manual_seed(0)
    model = task.build_model().eval()
    torch.nn.init.normal_(model.head.classifier.weight)  # logits far from ties: every class gets predicted
    dataset = task.dataset("test", model.processor)
    expected = []
    with torch.no_grad():
        for pixel_values, mask in (dataset[i] for i in range(len(dataset))):
            logits = one_image_at_a_time(model, pixel_values, mode, stride=8)
            expected.append(torch.nn.functional.interpolate(logits[None], size=mask.shape, mode="bilinear",
                                                            align_corners=False)[0].argmax(dim=0).numpy())
    assert len({picture.shape for picture in expected}) == 6
    batches = []
    model.register_forward_pre_hook(lambda module, args, kwargs: batches.append(len(kwargs["pixel_values"])),
                                    with_kwargs=True)
    results = []
    for batch_size in (1, 2, 4):  # 2: groups of a size also go through part-full, past the pending limit
        directory = tmp_path / f"batch{batch_size}"
        batches.clear()
        results.append(evaluate_segmenter(model, dataset, accelerator=make_accelerator(), mode=mode, stride=8,
                                          show_progress=False, predictions_dir=directory, batch_size=batch_size))
        assert max(batches) == batch_size
        index = json.loads((directory / "index.json").read_text())
        assert [entry["index"] for entry in index] == list(range(9))
        for entry, picture in zip(index, expected):
            np.testing.assert_array_equal(np.asarray(Image.open(directory / entry["prediction"])), picture)
    assert results[0] == results[1] == results[2] and results[0]["samples"] == 9
    assert all(iou > 0 for iou in results[0]["per_category_iou"])  # not one class everywhere
