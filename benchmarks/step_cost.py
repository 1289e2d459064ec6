"""Step time and peak memory of GRPO-RM relative to cross-entropy: full fine-tuning, last 2 blocks, frozen backbone.

What is timed is the training loop's own step (see ``benchmarks/common.py``): the model from
``grpo_rm.tasks.build_model`` with ``ModelArguments(freeze_backbone=..., train_last_n_blocks=...)``,
the old policy ``FrozenPolicy(model, shares=model.frozen_part)`` (a copy of the head when the backbone
is frozen, of the last 2 blocks, final norm and head for last2, of the whole model otherwise), and
``grpo_rm.training.steps.training_step`` (forward with ``return_frozen_output``, old-policy
forward, the method's loss, backward) followed by ``clip_gradients`` and the AdamW step. Both
methods see the same random-weights DINOv2, batch, image size and seed; GRPO-RM runs with beta = 0
(no reference policy). Data loading, the LR scheduler and logging are not in the step.

Time: for each mode, both methods are built in one process and stepped in alternating blocks
(``--steps`` steps of one, then of the other, the order flipping every round); each round gives
a GRPO-RM/CE ratio of its two medians, and the figure reported is the median over ``--rounds``
rounds. Other processes' load then hits both methods alike. On CPU the verdicts use the process's
CPU time per step (what the step costs a dedicated core; other jobs' load barely moves it), and
the wall-time ratio is printed next to it; on a GPU, wall time.

Memory: each (mode, method) runs in a fresh subprocess. The baseline is the resident set size
right after the model, the optimizer and the loop's one-image warm-up pass exist (before the
old policy is copied; the method's loss also runs once on a dummy [2, C] batch before it, so that
lazily initialised runtime state is not counted as the method's); the peak is the process's
high-water mark over ``--memory_steps`` steps after that, reset at the baseline through
``/proc/self/clear_refs`` (else ``ru_maxrss``, which also counts any earlier peak). On CUDA:
``torch.cuda.max_memory_allocated`` over ``memory_allocated`` at the baseline. Peak MiB is that
increase: gradients, AdamW state, activations, and for GRPO-RM the frozen copy and its forward.

CPU default: DINOv2 ViT-S/14's shape (random weights) at 112 px, batch 8, one torch thread
(``common.set_threads``).

    python benchmarks/step_cost.py   # 2 min on 2 idle cores, 5 under load
    python benchmarks/step_cost.py --image_size 224 --batch_size 32 --threads 8   # on a bigger CPU
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import common  # benchmarks/common.py
import torch

from grpo_rm.config import ObjectiveArguments
from grpo_rm.methods import build_method

TIME_TARGETS = {"full": 1.33, "last2": 1.15, "frozen": 1.05}
MEMORY_TARGETS = {"full": 1.5, "frozen": 1.05}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    common.add_shape_arguments(parser)
    run = parser.add_argument_group("measurement")
    run.add_argument("--modes", nargs="+", choices=list(common.MODES), default=list(common.MODES))
    run.add_argument("--rounds", type=int, default=5, help="alternating rounds per mode (time)")
    run.add_argument("--steps", type=int, default=3, help="steps per method per round (time)")
    run.add_argument("--warmup", type=int, default=2, help="untimed steps per method before the rounds")
    run.add_argument("--memory_steps", type=int, default=3, help="steps in each memory subprocess")
    run.add_argument("--no_memory", action="store_true", help="time only")
    run.add_argument("--threads", type=int, default=None,
                     help="torch threads (default: 1 on CPU, see common.set_threads)")
    run.add_argument("--bf16", action="store_true", help="bf16 autocast (mixed_precision=bf16), as on a GPU")
    run.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    run.add_argument("--encoder_dir", default=None, help=argparse.SUPPRESS)  # set for the memory subprocesses
    run.add_argument("--_memory", nargs=2, metavar=("MODE", "METHOD"), default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.mlp_size = args.mlp_size or 4 * args.hidden_size
    return args


# --- memory: one fresh process per (mode, method) ---

def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise KeyError(field)


def _reset_high_water_mark() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as file:
            file.write("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
        return True
    except OSError:
        return False


def memory_child(args: argparse.Namespace) -> None:
    mode, method = args._memory
    device = torch.device(args.device)
    accelerator = common.accelerator_for(device.type, "bf16" if args.bf16 else "no")
    batch = common.random_batch(args.batch_size, args.image_size, args.num_classes, device)
    # Warm the loss's code path on a dummy [2, C] batch before the baseline, as the loop's one-image pass
    # warms the model's: lazily initialised runtime state would otherwise count as the method's memory.
    dummy = torch.randn(2, args.num_classes, requires_grad=True)
    build_method(method, ObjectiveArguments(method=method).settings())(dummy, torch.tensor([0, 1]), dummy.detach()).loss.backward()
    baseline = {}

    def take_baseline() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            baseline["bytes"] = torch.cuda.memory_allocated()
            baseline["how"] = "cuda.max_memory_allocated"
        else:
            baseline["kib"] = _rss_kib("VmRSS")
            baseline["how"] = "VmHWM after clear_refs" if _reset_high_water_mark() else "ru_maxrss"
            baseline["maxrss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    step = common.build_step(args.encoder_dir, mode, method, args.num_classes, accelerator,
                             image_size=args.image_size, before_policies=take_baseline)
    for _ in range(args.memory_steps):
        step.run(batch)
    if device.type == "cuda":
        torch.cuda.synchronize()
        peak_mib = (torch.cuda.max_memory_allocated() - baseline["bytes"]) / 2**20
    elif baseline["how"].startswith("VmHWM"):
        peak_mib = (_rss_kib("VmHWM") - baseline["kib"]) / 1024
    else:
        peak_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - baseline["kib"]) / 1024
    print("MEMORY " + json.dumps({"mode": mode, "method": method, "peak_mib": peak_mib, "how": baseline["how"]}))


def measure_memory(args: argparse.Namespace, encoder_dir: str, argv: list[str]) -> dict:
    results = {}
    for mode in args.modes:
        for method in common.METHODS:
            command = [sys.executable, os.path.abspath(__file__), *argv, "--encoder_dir", encoder_dir,
                       "--_memory", mode, method]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            lines = [line for line in done.stdout.splitlines() if line.startswith("MEMORY ")]
            if done.returncode or not lines:
                raise SystemExit(f"memory subprocess {mode}/{method} failed:\n{done.stderr[-3000:]}")
            results[mode, method] = json.loads(lines[-1][len("MEMORY "):])
            print(f"  memory {mode:<7}{method:<8}{results[mode, method]['peak_mib']:8.1f} MiB", flush=True)
    return results


# --- time: both methods in one process, alternating blocks ---

def measure_time(args: argparse.Namespace, encoder_dir: str, mode: str) -> dict:
    device = torch.device(args.device)
    accelerator = common.accelerator_for(device.type, "bf16" if args.bf16 else "no")
    batch = common.random_batch(args.batch_size, args.image_size, args.num_classes, device)
    steps = {method: common.build_step(encoder_dir, mode, method, args.num_classes, accelerator,
                                       image_size=args.image_size) for method in common.METHODS}
    for method in common.METHODS:
        for _ in range(args.warmup):
            steps[method].run(batch)
    clocks = ("wall", "cpu")
    per_method = {clock: {method: [] for method in common.METHODS} for clock in clocks}
    ratios = {clock: [] for clock in clocks}
    for round_index in range(args.rounds):
        order = common.METHODS if round_index % 2 == 0 else common.METHODS[::-1]
        medians = {clock: {} for clock in clocks}
        for method in order:
            times = [common.timed(steps[method], batch, device) for _ in range(args.steps)]
            for clock in clocks:
                per_method[clock][method] += [t[clock] for t in times]
                medians[clock][method] = common.median([t[clock] for t in times])
        for clock in clocks:
            ratios[clock].append(medians[clock]["grpo-rm"] / medians[clock]["ce"])
    return {clock: {"ms": {method: 1000 * common.median(t) for method, t in per_method[clock].items()},
                    "ratio": common.median(ratios[clock]), "ratio_min": min(ratios[clock]),
                    "ratio_max": max(ratios[clock])} for clock in clocks}


def time_line(label: str, timing: dict) -> str:
    return ", ".join(f"{clock} ce {t['ms']['ce']:.0f} ms grpo-rm {t['ms']['grpo-rm']:.0f} ms ratio {t['ratio']:.3f} "
                     f"(rounds {t['ratio_min']:.3f}-{t['ratio_max']:.3f})" for clock, t in timing.items())


def main(argv=None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    common.set_threads(args.threads, args.device)
    if args._memory:
        memory_child(args)
        return
    began = time.perf_counter()
    print(common.machine_line(), flush=True)
    with tempfile.TemporaryDirectory() as encoder_dir:
        common.save_random_dinov2(encoder_dir, args.hidden_size, args.layers, args.heads, args.mlp_size,
                                  args.patch_size, args.image_size)
        memory = {} if args.no_memory else measure_memory(args, encoder_dir, argv)
        timing = {}
        for mode in args.modes:
            timing[mode] = measure_time(args, encoder_dir, mode)
            print(f"  time   {mode:<7}{time_line(mode, timing[mode])}", flush=True)

    print()
    print(f"device={args.device} threads={torch.get_num_threads()} {common.shape_line(args)} bf16={args.bf16} "
          f"rounds={args.rounds}x{args.steps} steps, wall {time.perf_counter() - began:.0f} s")
    if memory:
        print(f"peak memory: increase over the baseline, {next(iter(memory.values()))['how']}")
    clock = common.primary_clock(args.device)
    print(f"time: medians of the process's {'CPU' if clock == 'cpu' else 'wall'} time per step (verdicts); "
          f"'wall x CE': the same ratio in wall time")
    header = (f"| {'mode':<7}| {'CE ms':>7} | {'GRPO ms':>7} | {'time x CE':>9} | {'wall x CE':>9} | "
              f"{'target':>6} |      | "
              f"{'CE MiB':>7} | {'GRPO MiB':>8} | {'mem x CE':>8} | {'target':>6} |      |")
    print(header)
    print("|" + "|".join("-" * (len(part)) for part in header.split("|")[1:-1]) + "|")
    summary = []
    for mode in args.modes:
        t, wall = timing[mode][clock], timing[mode]["wall"]
        time_verdict = common.verdict(t["ratio"], TIME_TARGETS[mode])
        summary.append(f"{mode} step {t['ratio']:.2f} (<= {TIME_TARGETS[mode]}) {time_verdict}")
        mem_cells = f"{'':>7} | {'':>8} | {'':>8} | {'':>6} |      |"
        if memory:
            ce_mib, grpo_mib = memory[mode, "ce"]["peak_mib"], memory[mode, "grpo-rm"]["peak_mib"]
            mem_ratio = grpo_mib / ce_mib if ce_mib > 0 else float("nan")
            target = MEMORY_TARGETS.get(mode)
            mem_verdict = common.verdict(mem_ratio, target) if target else "-"
            mem_cells = (f"{ce_mib:>7.1f} | {grpo_mib:>8.1f} | {mem_ratio:>8.2f} | "
                         f"{target if target else '-':>6} | {mem_verdict:<4} |")
            if target:
                summary.append(f"{mode} memory {mem_ratio:.2f} (<= {target}) {mem_verdict}")
        print(f"| {mode:<7}| {t['ms']['ce']:>7.0f} | {t['ms']['grpo-rm']:>7.0f} | {t['ratio']:>9.3f} | "
              f"{wall['ratio']:>9.3f} | {TIME_TARGETS[mode]:>6} | {time_verdict:<4} | {mem_cells}")
    print()
    print("SUMMARY GRPO-RM/CE: " + "; ".join(summary))


if __name__ == "__main__":
    main()
