"""--report_to and its trackers: names, missing packages, run and project names, and what TensorBoard and
MLflow actually store (read back from their own files)."""

import pytest
import yaml

from grpo_rm.reporting import trackers
from grpo_rm.config import RunConfig, parse_run_config
from grpo_rm.reporting import read_metrics_log
from grpo_rm.commands.train import run_training
from grpo_rm.config.schema import tracker_names
from grpo_rm.reporting.trackers import tracker_init_kwargs

TOKEN = "hf_not_a_real_token_0123456789"


def tiny_run(model, output_dir, **overrides):
    values = dict(model_name_or_path=model, dataset_name="digits", output_dir=str(output_dir),
                  max_train_samples=32, max_eval_samples=16, per_device_train_batch_size=16,
                  num_train_epochs=2, logging_steps=1, disable_tqdm=True)
    return RunConfig.from_dict({**values, **overrides})


@pytest.mark.parametrize("given, expected", [
    ("mlflow", ["mlflow"]),  # old YAML files and Python callers
    (["tensorboard", "mlflow"], ["tensorboard", "mlflow"]),
    ("none", ["none"]),
    (None, ["none"]),
    ([], ["none"]),
    ("all", ["all"]),
])
def test_report_to_is_a_list_of_tracker_names(given, expected):
    assert tracker_names(given) == expected
    assert RunConfig.from_dict({"report_to": given}).training.report_to == expected


def test_report_to_takes_several_trackers_from_the_command_line_and_a_string_from_yaml(tmp_path):
    assert parse_run_config(["--report_to", "tensorboard", "mlflow"]).training.report_to == ["tensorboard", "mlflow"]
    assert RunConfig().training.report_to == ["tensorboard"]
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({"report_to": "none"}))
    assert RunConfig.from_yaml(tmp_path / "run.yaml").training.report_to == ["none"]


def test_an_unknown_tracker_names_the_value_and_the_valid_ones():
    with pytest.raises(ValueError, match=r"report_to=\['tensorbord'\] in config is not one of .*tensorboard.*mlflow"):
        RunConfig.from_dict({"report_to": ["tensorbord"]})
    with pytest.raises(ValueError, match="pass 'none' alone"):
        tracker_names(["none", "wandb"])


def test_a_missing_tracker_package_stops_the_run_before_anything_is_written(tmp_path, tiny_dinov2, monkeypatch):
    monkeypatch.setitem(trackers.TRACKER_PACKAGES, "wandb", ("wandb", lambda: False))
    run = tmp_path / "run"
    with pytest.raises(ValueError, match="pip install wandb"):
        run_training(tiny_run(tiny_dinov2, run, report_to=["tensorboard", "wandb"]))
    assert not run.exists()


def test_each_tracker_gets_the_run_name_under_its_own_keyword_and_tensorboard_a_purge_step_on_resume():
    kwargs = tracker_init_kwargs(["tensorboard", "wandb", "mlflow"], "lr-1e-4", resume_step=None)
    assert kwargs == {"wandb": {"name": "lr-1e-4"}, "mlflow": {"run_name": "lr-1e-4"}}
    assert tracker_init_kwargs(["tensorboard"], None, resume_step=12) == {"tensorboard": {"purge_step": 13}}
    assert tracker_init_kwargs(["all"], "x", None)["clearml"] == {"task_name": "x"}


def test_tensorboard_holds_the_metrics_of_metrics_jsonl_under_the_project_folder(tmp_path, tiny_dinov2):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run = tmp_path / "my-run"
    run_training(tiny_run(tiny_dinov2, run, hub_token=TOKEN))
    events = EventAccumulator(str(run / "tensorboard" / "my-run")).Reload()  # default project: the folder's name
    logged = read_metrics_log(run / "metrics.jsonl")
    for name in ("loss", "reward", "validation_accuracy"):
        expected = [(record["step"], record[name]) for record in logged if name in record]
        assert [(e.step, pytest.approx(e.value, rel=1e-6)) for e in events.Scalars(name)] == expected, name
    (hparams,) = (run / "tensorboard" / "my-run").glob("*/hparams.yml")
    stored = yaml.safe_load(hparams.read_text())
    assert stored["learning_rate"] == 5e-5 and stored["method"] == "grpo-rm"
    assert "hub_token" not in stored and TOKEN not in hparams.read_text()


def test_mlflow_stores_the_project_run_name_hyperparameters_and_metrics(tmp_path, tiny_dinov2, monkeypatch):
    pytest.importorskip("mlflow")
    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks for a database store otherwise
    run = tmp_path / "run"
    run_training(tiny_run(tiny_dinov2, run, report_to=["tensorboard", "mlflow"], tracker_project_name="study",
                   run_name="grpo-lr5e-5", hub_token=TOKEN))

    (experiment,) = [meta.parent for meta in store.glob("*/meta.yaml")
                     if yaml.safe_load(meta.read_text())["name"] == "study"]
    (mlflow_run,) = [path for path in experiment.iterdir() if path.is_dir()]
    assert (mlflow_run / "tags" / "mlflow.runName").read_text() == "grpo-lr5e-5"
    params = {path.name: path.read_text() for path in (mlflow_run / "params").iterdir()}
    assert params["learning_rate"] == "5e-05" and params["report_to"] == str(["tensorboard", "mlflow"])
    assert "hub_token" not in params and not any(TOKEN in value for value in params.values())
    logged = read_metrics_log(run / "metrics.jsonl")
    for name in ("loss", "validation_accuracy"):
        lines = (mlflow_run / "metrics" / name).read_text().splitlines()  # "<timestamp> <value> <step>"
        stored = [(int(step), float(value)) for _, value, step in (line.split() for line in lines)]
        expected = [(record["step"], record[name]) for record in logged if name in record]
        assert stored == [(step, pytest.approx(value, rel=1e-6)) for step, value in expected], name
    assert (run / "tensorboard" / "study").is_dir()  # the project also names TensorBoard's folder


def test_a_resumed_run_continues_its_mlflow_run(tmp_path, tiny_dinov2, monkeypatch):
    """Killed after a checkpoint and resumed, the run logs to the MLflow run it started: one run, its steps in order
    without a gap or a repeat, as metrics.jsonl holds them."""
    pytest.importorskip("mlflow")
    from grpo_rm.training import steps

    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    run = tmp_path / "run"
    config = tiny_run(tiny_dinov2, run, report_to=["mlflow"], tracker_project_name="resume", checkpointing_steps=2)
    original, calls = steps.training_step, []

    def killed_at_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated kill")
        return original(*args, **kwargs)

    monkeypatch.setattr(steps, "training_step", killed_at_third)
    with pytest.raises(KeyboardInterrupt):
        run_training(config)
    monkeypatch.setattr(steps, "training_step", original)
    import mlflow

    mlflow.end_run()  # the killed process's run stays open in this process; a new process starts with none
    run_training(config.with_overrides(resume_from_checkpoint="latest"))

    (experiment,) = [meta.parent for meta in store.glob("*/meta.yaml")
                     if yaml.safe_load(meta.read_text())["name"] == "resume"]
    (mlflow_run,) = [path for path in experiment.iterdir() if path.is_dir()]  # one run, not two
    lines = (mlflow_run / "metrics" / "loss").read_text().splitlines()
    stored = [int(step) for _, _, step in (line.split() for line in lines)]
    logged = [record["step"] for record in read_metrics_log(run / "metrics.jsonl") if "loss" in record]
    assert stored[:2] == logged[:2] and stored[-2:] == logged[-2:] and sorted(set(stored)) == logged
    assert trackers.tracker_init_kwargs(["mlflow", "wandb"], None, None, {"mlflow": "abc", "wandb": "xyz"}) == {
        "mlflow": {"run_id": "abc"}, "wandb": {"id": "xyz", "resume": "allow"}}
