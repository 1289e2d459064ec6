"""compare's local launchers: rows one after the other in this process, or several at once as processes of their
own with a share of the cores; a row pre-empted (exit 75) is started again; a row that fails is reported and the
others go on. The rows' training itself, through processes and against a sequential comparison, is tested in
test_slurm.py (submitit's local jobs); here each row's process is a stand-in that records what it was given."""

import json
import sys
import threading
import time
from pathlib import Path

import pytest

from grpo_rm.commands.compare import run_comparison
from grpo_rm.config import RunConfig
from grpo_rm.launchers import LocalLauncher, Row

# One thread, as every row gets when two share two cores: results then agree to the last bit.
ROW = dict(dataset_name="digits", max_train_samples=32, max_eval_samples=16, per_device_train_batch_size=8,
           num_train_epochs=3, checkpointing_steps=2, logging_steps=1, learning_rate=1e-3, disable_tqdm=True,
           report_to="none", num_threads=1, random_resized_crop_scale=[0.5, 1.0])
# What differs between two runs of the same computation: clocks, and where a resumed run came from.
NOT_COMPARED = ("train_runtime", "train_samples_per_second", "train_steps_per_second", "samples_per_second",
                "resumed_from_checkpoint")

# A row's process: records its start, end and environment, is "pre-empted" (exits 75) the first time when its
# config asks for it, fails when it asks for that, else writes results as a finished run does.
STAND_IN = """
import json, os, sys, time
from pathlib import Path
config = Path(sys.argv[sys.argv.index("--config") + 1])
values = config.read_text()
run_dir = Path([line.split(": ", 1)[1] for line in values.splitlines() if line.startswith("output_dir: ")][0])
run_dir.mkdir(parents=True, exist_ok=True)
record = config.parent / "starts.jsonl"
starts = len(record.read_text().splitlines()) if record.is_file() else 0
start = time.time()
time.sleep(0.3)
with record.open("a") as handle:
    handle.write(json.dumps({"start": start, "end": time.time(), "omp": os.environ.get("OMP_NUM_THREADS"),
                             "threads_key": "num_threads: 1" in values}) + "\\n")
if "seed: 7" in values:
    sys.exit(3)
if "seed: 1" in values and starts == 0:
    sys.exit(75)
(run_dir / "all_results.json").write_text(json.dumps({"eval_accuracy": 0.5}))
"""


def numbers(comparison: dict) -> dict:
    return {(run["variant"], run["seed"]): {key: value for key, value in run["results"].items()
                                            if key not in NOT_COMPARED}
            for run in comparison["runs"]}


def pid_running(fragment: str) -> int | None:
    """The process whose command line holds ``fragment`` (Linux's /proc)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if fragment in (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode():
                    return int(entry.name)
            except OSError:
                continue
    return None


def send_when_logged(metrics: Path, lines: int, send) -> threading.Thread:
    """Call ``send()`` once ``metrics`` has ``lines`` lines: the run is in its training loop."""
    def watch():
        deadline = time.time() + 120
        while time.time() < deadline:
            if metrics.is_file() and len(metrics.read_text().splitlines()) >= lines:
                send()
                return
            time.sleep(0.02)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_rows_run_at_once_with_their_share_of_the_cores_and_a_preempted_one_again(tmp_path, tiny_dinov2, monkeypatch):
    script = tmp_path / "stand_in.py"
    script.write_text(STAND_IN)
    monkeypatch.setattr(Row, "command", lambda self, processes=1: [sys.executable, str(script), "--config",
                                                                    str(self.config_path)])
    rows = [Row("ce", seed, RunConfig.from_dict({**ROW, "model_name_or_path": tiny_dinov2, "seed": seed,
                                                 "output_dir": str(tmp_path / "runs" / f"ce-seed{seed}")}),
                tmp_path / "launch" / f"ce-seed{seed}") for seed in (0, 1, 2, 7)]
    outcomes = LocalLauncher(max_parallel=2, cores=4, show_progress=False, poll_seconds=0.02).run(rows)

    assert {o.row.seed: (o.status, o.attempts) for o in outcomes} == {
        0: ("finished", 1), 1: ("finished", 2), 2: ("finished", 1), 7: ("failed", 1)}  # 75: started again
    failed = next(o for o in outcomes if o.status == "failed")
    assert "exit code 3" in failed.detail and str(rows[3].log_path) in failed.detail
    starts = [json.loads(line) for row in rows for line in (row.launch_dir / "starts.jsonl").read_text().splitlines()]
    assert all(start["omp"] == "2" and not start["threads_key"] for start in starts)  # 4 cores / 2 rows
    assert RunConfig.from_yaml(rows[0].config_path).training.num_threads == 2  # the budget is in the row's file too
    # Two at a time, never three.
    events = sorted([(s["start"], 1) for s in starts] + [(s["end"], -1) for s in starts])
    running = [sum(change for _, change in events[:i + 1]) for i in range(len(events))]
    assert max(running) == 2


def test_a_failed_row_is_reported_and_the_others_go_on(tmp_path, tiny_dinov2, capsys):
    # image_size 30 is no multiple of the patch size 4: that row fails when it builds its model (in this process).
    base = RunConfig.from_dict({**ROW, "model_name_or_path": tiny_dinov2, "output_dir": str(tmp_path / "cmp"),
                                "num_train_epochs": 1, "checkpointing_steps": None})
    comparison = run_comparison(base, ["ce"], [0], sweeps={"image_size": ["16", "30"]})
    printed = capsys.readouterr().out
    log = tmp_path / "cmp" / "launch" / "grpo-rm_image_size=30-seed0" / "log.txt"
    assert "failed: ValueError" in printed and str(log) in printed and "Traceback" in log.read_text()
    assert [run["variant"] for run in comparison["runs"]] == ["ce", "grpo-rm[image_size=16]"]
    (missing,) = comparison["missing_runs"]
    assert missing["variant"] == "grpo-rm[image_size=30]" and str(log) in missing["reason"]
    assert "**Missing runs**" in (tmp_path / "cmp" / "comparison.md").read_text()


@pytest.mark.parametrize("options, expected", [
    (dict(max_parallel=1), "InProcessLauncher"), (dict(max_parallel=2), "LocalLauncher"),
    (dict(kind="submitit"), "SubmititLauncher")])
def test_compare_options_pick_the_launcher(tmp_path, options, expected):
    from grpo_rm.commands.compare import make_launcher

    base = RunConfig.from_dict({"output_dir": str(tmp_path)})
    assert type(make_launcher(base, **options)).__name__ == expected
    with pytest.raises(ValueError, match="--no_wait needs --launcher submitit"):
        make_launcher(base, max_parallel=2, wait=False)
