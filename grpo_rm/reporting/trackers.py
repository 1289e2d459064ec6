"""Experiment trackers (through accelerate): which ones a run reports to, and how each one is named."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence

from accelerate.utils import (
    LoggerType,
    is_aim_available,
    is_clearml_available,
    is_comet_ml_available,
    is_dvclive_available,
    is_mlflow_available,
    is_swanlab_available,
    is_tensorboard_available,
    is_trackio_available,
    is_wandb_available,
)

from ..config.schema import NO_TRACKERS

ALL_TRACKERS = LoggerType.ALL.value

# Tracker -> (package to pip install, accelerate's check that it is importable). accelerate itself only
# logs at debug level and carries on without a tracker whose package is missing.
TRACKER_PACKAGES: dict[str, tuple[str, Callable[[], bool]]] = {
    "tensorboard": ("tensorboard", is_tensorboard_available),
    "wandb": ("wandb", is_wandb_available),
    "mlflow": ("mlflow", is_mlflow_available),
    "comet_ml": ("comet_ml", is_comet_ml_available),
    "aim": ("aim", is_aim_available),
    "clearml": ("clearml", is_clearml_available),
    "dvclive": ("dvclive", is_dvclive_available),
    "swanlab": ("swanlab", is_swanlab_available),
    "trackio": ("trackio", is_trackio_available),
}

# The keyword under which each tracker's own init takes a run name. accelerate gives every tracker the project
# name positionally: TensorBoard makes it a folder, Aim names the run after it, comet_ml takes no name there.
RUN_NAME_KEYWORDS = {
    "wandb": "name",
    "mlflow": "run_name",
    "clearml": "task_name",
    "dvclive": "exp_name",
    "swanlab": "experiment_name",
    "trackio": "name",
}


def tracker_config(values: Mapping[str, Any]) -> dict[str, Any]:
    """Hyper-parameters in the types TensorBoard's hparams accept."""
    return {key: value if isinstance(value, (int, float, str, bool)) else str(value) for key, value in values.items()}


def trackers_to_start(report_to: Sequence[str]) -> Optional[list[str]]:
    """accelerate's ``log_with``: None for no tracker. A tracker whose package is missing is an error naming it."""
    if list(report_to) == [NO_TRACKERS]:
        return None
    missing = [TRACKER_PACKAGES[name][0] for name in report_to
               if name in TRACKER_PACKAGES and not TRACKER_PACKAGES[name][1]()]
    if missing:
        raise ValueError(f"report_to {list(report_to)} needs the package(s) {', '.join(missing)}: "
                         f"pip install {' '.join(missing)} (or leave them out of --report_to)")
    return list(report_to)


def tracker_init_kwargs(report_to: Sequence[str], run_name: Optional[str], resume_step: Optional[int],
                        run_ids: Optional[Mapping[str, str]] = None) -> dict[str, dict[str, Any]]:
    """accelerate's ``init_kwargs``: the run name for each tracker that takes one and, on resume, TensorBoard's
    ``purge_step``, which drops what the killed run logged after its checkpoint, and the run ids MLflow and W&B gave
    the run before (``run_ids``, from the checkpoint's training state), so that they continue that run."""
    names = LoggerType.list() if ALL_TRACKERS in report_to else report_to
    kwargs: dict[str, dict[str, Any]] = {}
    if run_name is not None:
        kwargs.update({name: {RUN_NAME_KEYWORDS[name]: run_name} for name in names if name in RUN_NAME_KEYWORDS})
    if resume_step is not None:
        kwargs["tensorboard"] = {"purge_step": resume_step + 1}
    for name, run_id in (run_ids or {}).items():
        if name in names and name in RESUME_KEYWORDS:
            kwargs.setdefault(name, {}).update(RESUME_KEYWORDS[name](run_id))
    return kwargs


# How a tracker is told to continue a run, given the id it gave it.
RESUME_KEYWORDS: dict[str, Callable[[str], dict[str, Any]]] = {
    "mlflow": lambda run_id: {"run_id": run_id},
    "wandb": lambda run_id: {"id": run_id, "resume": "allow"},
}


def tracker_run_ids(trackers: Sequence[Any]) -> dict[str, str]:
    """The ids of the runs MLflow and W&B started (accelerate's trackers), to continue them after a resume."""
    ids = {}
    for tracker in trackers:
        if tracker.name == "mlflow" and getattr(tracker, "active_run", None) is not None:
            ids["mlflow"] = tracker.active_run.info.run_id
        elif tracker.name == "wandb" and getattr(tracker, "run", None) is not None:
            ids["wandb"] = tracker.run.id
    return ids


def tracker_project_name(project_name: Optional[str], output_dir: str) -> str:
    """The project the trackers file the run under: the one given, else the output directory's name."""
    return project_name or Path(output_dir).resolve().name
