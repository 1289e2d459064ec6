"""Runs that share a machine's cores: two `grpo-rm train` processes at once against one alone, with and without a
thread budget, and with OpenMP's idle threads spinning or sleeping.

Each run is the console command on the demo's small stand-in (a random-weights 4-block DINOv2, 96 wide, 32 px;
``common.save_random_dinov2``) on the embedded digits, ``--max_train_steps`` steps (60 by default) with the
evaluation cut to ``--max_eval_samples``. A setting starts its runs at the same moment and waits for all; the figure
of a run is its wall time, the command's start to its exit (Python start, imports and evaluation included), and
``train_runtime`` (the training loop's own clock). Settings:

- ``alone``: one run, torch's default threads (one per core);
- ``two``: two runs at once, default threads;
- ``two-budget``: two runs at once, each with ``--num_threads`` = cores / 2 (what ``compare --max_parallel 2`` sets);
- ``alone-1``: one run with 1 thread;
each under one of OpenMP's wait policies (``WAIT_POLICIES``): idle threads of libgomp (torch's OpenMP on Linux)
spin forever (``active``), spin GOMP_SPINCOUNT iterations then sleep (``libgomp-default``: 300000, what it does when
nothing is set; ``spin-10k``, ``spin-1k``), or sleep at once (``passive``). Targets (issue "Studies that outgrow one
machine"): two budgeted runs each within 1.5x of one alone; a default that does not collapse when cores are shared
and costs at most 5 % alone.

    python benchmarks/concurrent_runs.py                   # about 10 minutes on 2 idle cores
    python benchmarks/concurrent_runs.py --rounds 2 --settings alone two-budget

Measure on an otherwise idle machine: other jobs are what this measures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common  # benchmarks/common.py

CORES = os.cpu_count() or 1
SETTINGS = {  # name -> (runs at once, --num_threads or None)
    "alone": (1, None),
    "two": (2, None),
    "two-budget": (2, max(1, CORES // 2)),
    "alone-1": (1, 1),
}
# OpenMP's idle threads (libgomp): spin forever, sleep at once, or spin N iterations then sleep. libgomp's default when
# nothing is set is GOMP_SPINCOUNT=300000; grpo-rm's CLI sets its own default only when neither variable is set.
WAIT_POLICIES = {
    "active": {"OMP_WAIT_POLICY": "ACTIVE"},
    "libgomp-default": {"GOMP_SPINCOUNT": "300000"},
    "spin-100k": {"GOMP_SPINCOUNT": "100000"},
    "spin-30k": {"GOMP_SPINCOUNT": "30000"},
    "spin-10k": {"GOMP_SPINCOUNT": "10000"},
    "spin-1k": {"GOMP_SPINCOUNT": "1000"},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
}


def launch(encoder: str, output_dir: Path, threads: int | None, wait_policy: dict, args) -> subprocess.Popen:
    command = [os.path.join(os.path.dirname(sys.executable), "grpo-rm"), "train", "--model_name_or_path", encoder,
               "--dataset_name", "digits", "--output_dir", str(output_dir), "--max_train_steps", str(args.steps),
               "--per_device_train_batch_size", "32", "--max_eval_samples", str(args.max_eval_samples),
               "--report_to", "none", "--disable_tqdm", "--logging_steps", "10"]
    if threads:
        command += ["--num_threads", str(threads)]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY")}
    env.update(wait_policy)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def run_setting(encoder: str, root: Path, name: str, policy: str, args) -> list[dict]:
    count, threads = SETTINGS[name]
    start = time.perf_counter()
    processes = [launch(encoder, root / f"{name}-{policy}-{i}", threads, WAIT_POLICIES[policy], args)
                 for i in range(count)]
    results = []
    for i, process in enumerate(processes):
        _, stderr = process.communicate()
        wall = time.perf_counter() - start
        if process.returncode != 0:
            raise SystemExit(f"{name}/{policy} run {i} failed:\n{stderr[-3000:]}")
        trained = json.loads((root / f"{name}-{policy}-{i}" / "all_results.json").read_text())
        results.append({"wall_s": wall, "train_runtime": trained["train_runtime"]})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--max_eval_samples", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=1, help="Each setting this many times; medians reported.")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--wait_policies", nargs="+", default=list(WAIT_POLICIES), choices=list(WAIT_POLICIES))
    parser.add_argument("--output_json", help="Also write the figures here.")
    args = parser.parse_args()
    print(f"{CORES} cores; {args.steps} steps per run; {args.rounds} round(s); load average before: "
          f"{os.getloadavg()[0]:.2f}", flush=True)
    figures: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        encoder = common.save_random_dinov2(root / "encoder", 96, 4, 4, 192, 4, 32)
        for round_index in range(args.rounds):
            for policy in args.wait_policies:
                for name in args.settings:
                    runs = run_setting(encoder, root / f"round{round_index}", name, policy, args)
                    key = f"{name}/{policy}"
                    for metric in ("wall_s", "train_runtime"):
                        figures.setdefault(key, {}).setdefault(metric, []).append(max(r[metric] for r in runs))
                    print(f"  {key:<20} wall {max(r['wall_s'] for r in runs):7.1f} s   train_runtime "
                          f"{max(r['train_runtime'] for r in runs):7.1f} s", flush=True)
    summary = {key: {metric: statistics.median(values) for metric, values in metrics.items()}
               for key, metrics in figures.items()}
    print(f"\n| setting | wall s (slowest run) | x alone/same policy | train_runtime s | x alone |")
    print("|---|---|---|---|---|")
    for key, values in summary.items():
        name, policy = key.split("/")
        alone = summary.get(f"alone/{policy}")
        ratio = lambda metric: f"{values[metric] / alone[metric]:.2f}" if alone else "-"  # noqa: E731
        print(f"| {key} | {values['wall_s']:.1f} | {ratio('wall_s')} | {values['train_runtime']:.1f} | "
              f"{ratio('train_runtime')} |")
    baseline = summary.get("alone/libgomp-default")
    if baseline:
        print("\nagainst one run alone under libgomp's default (wall time):")
        for key, values in summary.items():
            print(f"  {key:<26} {values['wall_s'] / baseline['wall_s']:.2f}x")
    if args.output_json:
        Path(args.output_json).write_text(json.dumps({"cores": CORES, "steps": args.steps, "rounds": args.rounds,
                                                      "summary": summary}, indent=2) + "\n")


if __name__ == "__main__":
    main()
