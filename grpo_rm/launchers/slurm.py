"""A comparison's rows as SLURM jobs through submitit (the launcher of DINOv2's own training and evaluation), or
through submitit's local executor (a workstation, and the tests).

Each row is a job (the rows together a job array): ``TrainRow``, a picklable callable that runs ``grpo-rm train
--config <row file>`` in the job. A row with several GPUs runs one task per GPU and trains under DDP (submitit
exports the ranks). Pre-empted or timed out, SLURM (or the local executor) sends submitit's signal (SIGUSR2): the
run finishes its step, writes a checkpoint, and the job is requeued through submitit's ``checkpoint`` hook; it
then continues with ``--resume_from_checkpoint latest``, which every compare row has.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from ..config import RunConfig
from ..config.fields import RUNTIME, option
from ..files import SUBMITIT_JOBS_NAME, write_json_atomic
from ..runtime import end_process_group
from ..training import TrainingPreempted
from .rows import Outcome, Progress, Row

logger = logging.getLogger(__name__)

# SLURM states of a job that is still coming or going: its row must not be submitted again.
ACTIVE_STATES = ("PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING", "RESIZING", "SUSPENDED")


@dataclass
class SlurmArguments:
    """What each row's job asks of the cluster (submitit's parameters)."""

    submitit_cluster: str = option("slurm", "slurm, or local: submitit's local executor (jobs as local processes).",
                                   role=RUNTIME, choices=("slurm", "local"))
    partition: Optional[str] = option(None, "SLURM partition.", role=RUNTIME)
    account: Optional[str] = option(None, "SLURM account.", role=RUNTIME)
    timeout_min: int = option(24 * 60, "Time limit of each job, in minutes (a timed-out job is requeued).",
                              role=RUNTIME, range="[1, inf)")
    nodes: int = option(1, "Nodes per row.", role=RUNTIME, range="[1, inf)")
    gpus_per_node: int = option(0, "GPUs per node for each row; with several, one task per GPU trains under DDP.",
                                role=RUNTIME, range="[0, inf)")
    cpus_per_task: int = option(8, "CPU cores per task (DataLoader workers and threads).", role=RUNTIME,
                                range="[1, inf)")
    mem_gb: Optional[int] = option(None, "Memory per node, in GB.", role=RUNTIME, range="[1, inf)")
    array_parallelism: int = option(64, "At most this many rows' jobs at once.", role=RUNTIME, range="[1, inf)")

    def executor_parameters(self) -> dict:
        """submitit.AutoExecutor's parameters: one task per GPU (or one task), the rest as given."""
        tasks = max(1, self.gpus_per_node)
        parameters = {"timeout_min": self.timeout_min, "nodes": self.nodes, "tasks_per_node": tasks,
                      "cpus_per_task": self.cpus_per_task, "slurm_array_parallelism": self.array_parallelism}
        if self.gpus_per_node:
            parameters["gpus_per_node"] = self.gpus_per_node
        if self.mem_gb:
            parameters["mem_gb"] = self.mem_gb
        if self.submitit_cluster == "slurm":
            parameters["slurm_signal_delay_s"] = 120  # SIGUSR2 two minutes before the limit: time to checkpoint
            if self.partition:
                parameters["slurm_partition"] = self.partition
            if self.account:
                parameters["slurm_account"] = self.account
        return parameters


class TrainRow:
    """One row as a submitit job: the train command's function (``commands.train.run_training``, pickled by its
    name) on the row's config file, in every task of the job."""

    def __init__(self, train: Callable[[RunConfig], dict], config_path: str, distributed: bool):
        self.train = train
        self.config_path = config_path
        self.distributed = distributed

    def __call__(self) -> None:
        import submitit

        if self.distributed:
            submitit.helpers.TorchDistributedEnvironment().export()  # MASTER_ADDR, RANK, WORLD_SIZE ... for DDP
        usr_signal = submitit.JobEnvironment._usr_sig()
        submitit_handler = signal.getsignal(usr_signal)
        try:
            # The loop handles submitit's signal (SIGUSR2) as it does SIGTERM: it finishes the step and checkpoints.
            self.train(RunConfig.from_yaml(self.config_path))
        except TrainingPreempted:
            # Checkpointed: now submitit's own handler requeues the job (it calls ``checkpoint`` below).
            end_process_group()
            signal.signal(usr_signal, submitit_handler)
            os.kill(os.getpid(), usr_signal)
            raise
        finally:
            end_process_group()

    def checkpoint(self) -> "submitit.helpers.DelayedSubmission":  # noqa: F821
        """submitit's requeue hook: the same row again; it resumes from the checkpoint the run wrote."""
        import submitit

        return submitit.helpers.DelayedSubmission(TrainRow(self.train, self.config_path, self.distributed))


class SubmititLauncher:
    """Every row a job; waits for them (``wait``) or submits and returns. The job ids are kept in
    ``<launch dir>/jobs.json``: a comparison run again collects the rows that finished, leaves those still queued
    or running, and submits the rest again."""

    def __init__(self, train: Callable[[RunConfig], dict], launch_dir: Path, arguments: SlurmArguments,
                 wait: bool = True, show_progress: bool = True):
        if not wait and arguments.submitit_cluster == "local":
            raise ValueError("--no_wait needs --submitit_cluster slurm: local jobs are processes of this command")
        self.train = train
        self.launch_dir = Path(launch_dir)
        self.arguments = arguments
        self.wait = wait
        self.show_progress = show_progress

    def executor(self):
        try:
            import submitit
        except ImportError as error:
            raise ValueError('--launcher submitit needs submitit: pip install "grpo-rm[slurm]"') from error

        executor = submitit.AutoExecutor(folder=str(self.launch_dir / "submitit" / "%j"),
                                         cluster=self.arguments.submitit_cluster)
        executor.update_parameters(name="grpo-rm", **self.arguments.executor_parameters())
        return executor

    def run(self, rows: Sequence[Row]) -> list[Outcome]:
        jobs_file = self.launch_dir / SUBMITIT_JOBS_NAME
        known = json.loads(jobs_file.read_text()) if jobs_file.is_file() else {}
        outcomes, to_submit = [], []
        for row in rows:
            job_id = known.get(str(row.config_path))
            state = self._state(job_id) if job_id else None
            if state in ACTIVE_STATES:
                outcomes.append(Outcome(row, "submitted", f"job {job_id} is {state.lower()}"))
            else:
                to_submit.append(row)
        for row in to_submit:
            row.write_config()
        if to_submit:
            executor = self.executor()
            distributed = self.arguments.gpus_per_node * self.arguments.nodes > 1
            with executor.batch():  # one job array
                jobs = [executor.submit(TrainRow(self.train, str(row.config_path), distributed)) for row in to_submit]
            known.update({str(row.config_path): job.job_id for row, job in zip(to_submit, jobs)})
            write_json_atomic(jobs_file, known)
            logger.info("submitted %d row(s) to %s", len(jobs), self.arguments.submitit_cluster)
            if self.wait:
                outcomes += self._wait(to_submit, jobs)
            else:
                outcomes += [Outcome(row, "submitted", f"job {job.job_id}") for row, job in zip(to_submit, jobs)]
        return outcomes

    def _wait(self, rows: Sequence[Row], jobs: Sequence) -> list[Outcome]:
        progress = Progress(rows, self.show_progress)
        for row in rows:
            progress.started(row)
        outcomes = []
        try:
            for row, job in zip(rows, jobs):
                try:
                    job.result()
                    outcome = Outcome(row, "finished")
                except Exception as error:  # the job's own error, as submitit re-raises it
                    outcome = Outcome(row, "failed", f"{type(error).__name__}: {str(error).splitlines()[-1:]}; "
                                                     f"see {job.paths.stderr}")
                if outcome.status == "finished" and not row.finished:
                    outcome = Outcome(row, "failed", f"the job ended without results; see {job.paths.stderr}")
                progress.ended(outcome)
                outcomes.append(outcome)
        finally:
            progress.close()
        return outcomes

    def _state(self, job_id: str) -> Optional[str]:
        """A job's SLURM state (None when it cannot be known: a local job of another command, or no SLURM)."""
        if self.arguments.submitit_cluster != "slurm":
            return None
        import submitit

        try:
            return submitit.SlurmJob(folder=str(self.launch_dir / "submitit" / "%j"), job_id=job_id).state
        except Exception:  # sacct missing or the job forgotten: submit again (the row resumes from its checkpoint)
            return None
