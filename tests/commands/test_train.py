"""Frozen-feature evaluation shared between processes gives the numbers of one process alone."""

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from grpo_rm.config import RunConfig
from grpo_rm.data import other_dataset_arguments
from grpo_rm.representation import FeatureExtractor, evaluate_representation
from grpo_rm.tasks import labelled_data


def test_two_process_representation_matches_one_process(tmp_path, tiny_dinov2, imagefolder):
    run = tmp_path / "ddp"
    torchrun = os.path.join(os.path.dirname(sys.executable), "torchrun")
    # Test split: 18 images in batches of 4, so the last round leaves one process without a batch.
    command = [torchrun, "--nproc_per_node", "2", "-m", "grpo_rm.cli", "train", "--model_name_or_path", tiny_dinov2,
               "--dataset_name", imagefolder, "--output_dir", str(run), "--max_train_steps", "1",
               "--per_device_eval_batch_size", "4", "--eval_datasets", imagefolder, "--knn_k", "3",
               "--probe_epochs", "3", "--feature_cache_dir", str(tmp_path / "cache-2"), "--image_size", "16",
               "--report_to", "none", "--disable_tqdm"]
    # One thread per process, as in the reference below: CPU kernels round differently with more threads.
    result = subprocess.run(command, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    reported = json.loads((run / "representation_results.json").read_text())[imagefolder]

    config = RunConfig.from_run_dir(str(run))
    evaluation = dataclasses.replace(config.evaluation, feature_cache_dir=str(tmp_path / "cache-1"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        extractor = FeatureExtractor.from_pretrained(str(run), image_size=config.model.image_size,
                                                     cache_dir=evaluation.feature_cache_dir, show_progress=False)
        datasets = [labelled_data(extractor.modality, data_args, extractor.processor, batch_size=4)
                    for data_args in other_dataset_arguments(config.data, evaluation.eval_datasets)]
        alone = evaluate_representation(extractor, datasets, evaluation)
    finally:
        torch.set_num_threads(threads)
    alone = json.loads(json.dumps(alone[imagefolder]))  # tuples to lists, as in the file

    assert reported["knn"]["protocol"]["test_samples"] == 18  # no example gathered twice
    files = {}
    for protocol in ("knn", "linear_probe"):
        files.update(reported[protocol]["protocol"].pop("feature_files"))
        alone[protocol]["protocol"].pop("feature_files")
    assert reported == alone
    for name, path in files.items():  # the same cache key: same model, data and preprocessing
        assert (tmp_path / "cache-1" / Path(path).name).read_bytes() == Path(path).read_bytes(), name
