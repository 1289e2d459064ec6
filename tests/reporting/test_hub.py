"""--push_to_hub: what is uploaded, where, with which token; and an upload that fails keeps every local file.
The Hub is never reached: the upload functions are substituted, or offline mode refuses them."""

from types import SimpleNamespace

import pytest
from huggingface_hub import ModelCard
from huggingface_hub.utils import filter_repo_objects

from grpo_rm.reporting import hub
from grpo_rm.config import RunConfig
from grpo_rm.reporting.hub import HubPushError
from grpo_rm.commands.train import run_training

TOKEN = "hf_not_a_real_token_0123456789"


def hub_run(model, output_dir, **overrides):
    values = dict(model_name_or_path=model, dataset_name="digits", output_dir=str(output_dir),
                  max_train_samples=32, max_eval_samples=16, per_device_train_batch_size=16, num_train_epochs=2,
                  disable_tqdm=True, checkpointing_steps="epoch", push_to_hub=True)
    return RunConfig.from_dict({**values, **overrides})


def uploaded_files(folder, ignore_patterns):
    """The files ``upload_folder`` sends, filtered by its own function."""
    files = [path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()]
    return set(filter_repo_objects(files, ignore_patterns=ignore_patterns))


def test_push_creates_the_repo_and_uploads_the_run_without_checkpoints(tmp_path, tiny_dinov2, monkeypatch):
    calls = {}

    def create_repo(repo_id, **kwargs):
        calls["create_repo"] = {"repo_id": repo_id, **kwargs}
        return SimpleNamespace(repo_id=f"me/{repo_id}")  # the Hub puts a bare name in the token's namespace

    def upload_folder(**kwargs):
        calls["upload_folder"] = kwargs
        calls["files"] = uploaded_files(kwargs["folder_path"], kwargs["ignore_patterns"])

    monkeypatch.setattr(hub, "create_repo", create_repo)
    monkeypatch.setattr(hub, "upload_folder", upload_folder)
    run = tmp_path / "dinov2-grpo"
    run_training(hub_run(tiny_dinov2, run, hub_private_repo=True, hub_token=TOKEN))

    assert calls["create_repo"] == {"repo_id": "dinov2-grpo", "token": TOKEN, "private": True, "exist_ok": True}
    assert calls["upload_folder"]["repo_id"] == "me/dinov2-grpo" and calls["upload_folder"]["token"] == TOKEN
    assert calls["upload_folder"]["folder_path"] == run
    files = calls["files"]
    assert {"README.md", "model.safetensors", "head.safetensors", "all_results.json", "metrics.jsonl",
            "best_model/README.md", "best_model/model.safetensors"} <= files
    assert any(name.startswith("tensorboard/") for name in files)
    assert list(run.glob("checkpoint-*")) and not any(name.startswith("checkpoint-") for name in files)
    for card in (run / "README.md", run / "best_model" / "README.md"):  # cards name the repository the Hub chose
        assert 'snapshot_download("me/dinov2-grpo")' in ModelCard.load(card).text


def test_a_failed_push_keeps_every_file_and_says_how_to_push_later(tmp_path, tiny_dinov2, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    run = tmp_path / "run"
    with pytest.raises(HubPushError) as raised:
        run_training(hub_run(tiny_dinov2, run, hub_model_id="me/dinov2-grpo", hub_token=TOKEN))
    message = str(raised.value)
    assert f"every file is in {run}" in message and "offline" in message
    assert f"hf upload me/dinov2-grpo {run} . --exclude 'checkpoint-*'" in message
    assert TOKEN not in message
    for name in ("all_results.json", "eval_results.json", "README.md", "model.safetensors", "metrics.jsonl",
                 "best_model/README.md", "best_model/head.safetensors"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").rglob("events.out.tfevents.*"))


def test_the_token_is_neither_written_nor_pushed(tmp_path, tiny_dinov2, monkeypatch):
    pushed = {}
    monkeypatch.setattr(hub, "create_repo", lambda repo_id, **kwargs: SimpleNamespace(repo_id=repo_id))
    monkeypatch.setattr(hub, "upload_folder", lambda **kwargs: pushed.update(
        files=uploaded_files(kwargs["folder_path"], kwargs["ignore_patterns"])))
    run = tmp_path / "run"
    run_training(hub_run(tiny_dinov2, run, hub_model_id="me/run", hub_token=TOKEN))
    assert pushed["files"]
    holding_the_token = sorted(str(path.relative_to(run)) for path in run.rglob("*")
                               if path.is_file() and TOKEN.encode() in path.read_bytes())
    assert not holding_the_token
