"""compare's rows as submitit jobs: through submitit's local executor they give the sequential comparison's results,
and a job pre-empted by submitit's signal is requeued and resumes; on SLURM, what is submitted for a multi-GPU row
(read from the sbatch file a stand-in `sbatch` receives), and a run of compare again leaves queued rows alone."""

import json
import os
import signal
import stat
import sys
from pathlib import Path

import pytest

from grpo_rm.commands.compare import run_comparison
from grpo_rm.commands.train import run_training
from grpo_rm.config import RunConfig
from grpo_rm.launchers import Row, SlurmArguments, SubmititLauncher, TrainRow
from tests.launchers.test_local import ROW, numbers, pid_running, send_when_logged

submitit = pytest.importorskip("submitit")


def test_a_preempted_local_job_is_requeued_and_gives_the_sequential_results(tmp_path, tiny_dinov2, monkeypatch):
    base = RunConfig.from_dict({**ROW, "model_name_or_path": tiny_dinov2, "output_dir": str(tmp_path / "sequential")})
    sequential = run_comparison(base, ["grpo-rm"], [0])

    jobs_dir = tmp_path / "jobs"
    launcher = SubmititLauncher(run_training, jobs_dir / "launch",
                                SlurmArguments(submitit_cluster="local", timeout_min=10, cpus_per_task=1),
                                show_progress=False)
    waited = []
    original_wait = launcher._wait

    def preempt():  # what SLURM sends a job about to be pre-empted or to time out (submitit's USR2), to the task
        os.kill(pid_running("submitit.core._submit"), signal.SIGUSR2)

    def wait_after_preempting(rows, jobs):
        metrics = Path(rows[0].config.training.output_dir) / "metrics.jsonl"
        send_when_logged(metrics, 3, preempt).join()  # once the run is in its training loop
        waited.append(jobs[0])
        return original_wait(rows, jobs)

    monkeypatch.setattr(launcher, "_wait", wait_after_preempting)
    through_jobs = run_comparison(base.with_overrides(output_dir=str(jobs_dir)), ["grpo-rm"], [0], launcher=launcher)
    assert numbers(through_jobs) == numbers(sequential)
    (job,) = waited
    log = Path(job.paths.stderr).read_text() + Path(job.paths.stdout).read_text()
    assert "SIGUSR2 received" in log and "Requeued job" in log  # checkpointed, requeued, resumed
    assert "checkpoint-" in through_jobs["runs"][0]["results"]["resumed_from_checkpoint"]


def stand_in(bin_dir: Path, name: str, script: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!{sys.executable}\n{script}")
    path.chmod(path.stat().st_mode | stat.S_IEXEC)


def test_a_multi_gpu_row_is_submitted_to_slurm_with_its_parameters_and_not_twice(tmp_path, tiny_dinov2,
                                                                                 monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # sbatch keeps the script it is given; sacct says every job is running.
    stand_in(bin_dir, "sbatch", "import shutil, sys\nshutil.copy(sys.argv[-1], sys.argv[-1] + '.submitted')\n"
                                "print('Submitted batch job 4242')\n")
    stand_in(bin_dir, "sacct", "print('JobID|State'); print('4242|RUNNING')\n")
    stand_in(bin_dir, "srun", "")  # submitit looks for it to know it is on a cluster
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    config = RunConfig.from_dict({**ROW, "model_name_or_path": tiny_dinov2, "output_dir": str(tmp_path / "run")})
    row = Row("grpo-rm", 0, config, tmp_path / "launch" / "grpo-rm-seed0")
    arguments = SlurmArguments(partition="gpu", account="vision", timeout_min=600, nodes=2, gpus_per_node=4,
                               cpus_per_task=10, mem_gb=64, array_parallelism=8)
    launcher = SubmititLauncher(run_training, tmp_path / "launch", arguments, wait=False, show_progress=False)

    (outcome,) = launcher.run([row])
    assert outcome.status == "submitted" and "4242" in outcome.detail
    (script,) = (tmp_path / "launch" / "submitit").rglob("*.submitted")
    text = script.read_text()
    for line in ("#SBATCH --partition=gpu", "#SBATCH --account=vision", "#SBATCH --time=600", "#SBATCH --nodes=2",
                 "#SBATCH --gpus-per-node=4", "#SBATCH --ntasks-per-node=4", "#SBATCH --cpus-per-task=10",
                 "#SBATCH --mem=64GB", "#SBATCH --signal=USR2@120"):
        assert line in text, line
    # The job runs run_training on the row's file, under DDP: one task per GPU, on both nodes.
    (pickled,) = (tmp_path / "launch" / "submitit").rglob("*_submitted.pkl")
    delayed = submitit.helpers.DelayedSubmission.load(pickled)
    assert isinstance(delayed.function, TrainRow) and delayed.function.distributed
    assert delayed.function.train is run_training and delayed.function.config_path == str(row.config_path)
    assert RunConfig.from_yaml(row.config_path).to_dict() == config.to_dict()
    assert json.loads((tmp_path / "launch" / "jobs.json").read_text()) == {str(row.config_path): "4242"}

    # Run again while the job is queued or running: nothing is submitted again.
    script.unlink()
    (again,) = launcher.run([row])
    assert again.status == "submitted" and "running" in again.detail
    assert not list((tmp_path / "launch" / "submitit").rglob("*.submitted"))
