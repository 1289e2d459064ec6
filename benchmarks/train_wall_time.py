"""Whole-run wall time of ``grpo-rm train``, GRPO-RM relative to cross-entropy: full fine-tuning, frozen backbone.

Each run is ``grpo_rm.commands.train.run_training(RunConfig)``, i.e. what ``grpo-rm train`` does: setup, the
training loop (data loading, augmentation, logging, per-epoch validation and best-model saving,
the old-policy refresh each epoch), the final save and test evaluation. The encoder is a
random-weights DINOv2 saved with ``save_pretrained`` (default: the demo's small stand-in shape,
hidden 96, 4 blocks, 4 heads, MLP 192, patch 4, 32 px), the data the embedded ``digits``
(1,257 training images), with a small evaluation (``--max_eval_samples``, validation and test).

Each run's wall time (the ``run_training()`` call) and the process's CPU time over that call
(``time.process_time``; DataLoader workers are 0, so all the work is in this process) are recorded,
and ``train_runtime`` (the loop's own wall clock, without setup, the final save and test). Runs of
one mode alternate CE / GRPO-RM, the order flipping each round; each ratio is the median over
``--rounds`` rounds of that round's GRPO-RM / CE. On a CPU shared with other jobs the load moves
within a minute, and one run's wall time can double (seen here: CE 38 s and 65 s for the same
run), so on CPU the verdicts use the CPU-time ratio (the wall time the runs would take on a
dedicated core); the wall-time ratio is printed next to it. On a GPU the verdicts use wall time.
Targets (issue "Scale and speed"): full fine-tuning <= 1.33, frozen backbone <= 1.08.

    python benchmarks/train_wall_time.py                  # 4 runs of 300 steps: 1.5 min on 2 idle cores, 5 under load
    python benchmarks/train_wall_time.py --rounds 3 --steps 1000 --hidden_size 192 --layers 6
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import common  # benchmarks/common.py
import torch

from grpo_rm.config import RunConfig
from grpo_rm.commands.train import run_training

TARGETS = {"full": 1.33, "frozen": 1.08}  # no whole-run target for last2 in the issue


def run_once(encoder_dir: str, output_dir: Path, mode: str, method: str, args) -> dict:
    freeze_backbone, last_n = common.MODES[mode]
    config = RunConfig.from_dict({
        "model_name_or_path": encoder_dir,
        "dataset_name": "digits",
        "output_dir": str(output_dir),
        "overwrite_output_dir": True,
        "method": method,
        "freeze_backbone": freeze_backbone,
        "train_last_n_blocks": last_n,
        "max_train_steps": args.steps,
        "per_device_train_batch_size": args.batch_size,
        "per_device_eval_batch_size": 64,
        "max_eval_samples": args.max_eval_samples,
        "learning_rate": 1e-4,
        "head_learning_rate": 1e-3,
        "logging_steps": 10,
        "seed": 0,
        "report_to": "none",
        "disable_tqdm": True,
        "use_cpu": args.device == "cpu",
        "mixed_precision": "bf16" if args.bf16 else "no",
    })
    start, cpu = time.perf_counter(), time.process_time()
    results = run_training(config)
    return {"wall_s": time.perf_counter() - start, "cpu_s": time.process_time() - cpu,
            "train_runtime": results["train_runtime"], "steps": results["total_steps"], "epochs": results["epoch"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    group = parser.add_argument_group("model (random DINOv2 weights)")
    group.add_argument("--hidden_size", type=int, default=96)
    group.add_argument("--layers", type=int, default=4)
    group.add_argument("--heads", type=int, default=4)
    group.add_argument("--mlp_size", type=int, default=192)
    group.add_argument("--patch_size", type=int, default=4)
    group.add_argument("--image_size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps per run (max_train_steps)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--max_eval_samples", type=int, default=64, help="validation and test images evaluated")
    parser.add_argument("--modes", nargs="+", choices=["full", "last2", "frozen"], default=["full", "frozen"])
    parser.add_argument("--rounds", type=int, default=1, help="CE/GRPO-RM pairs per mode (median ratio)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: 1 on CPU)")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    common.set_threads(args.threads, args.device)
    logging.disable(logging.WARNING)  # the runs' info lines; errors still show
    began = time.perf_counter()
    print(common.machine_line(), flush=True)
    results = {mode: {m: [] for m in common.METHODS} for mode in args.modes}
    with tempfile.TemporaryDirectory() as work:
        encoder_dir = common.save_random_dinov2(Path(work) / "encoder", args.hidden_size, args.layers, args.heads,
                                                args.mlp_size, args.patch_size, args.image_size)
        for round_index in range(args.rounds):
            for mode in args.modes:
                for method in (common.METHODS if round_index % 2 == 0 else common.METHODS[::-1]):
                    r = run_once(encoder_dir, Path(work) / f"{mode}-{method}", mode, method, args)
                    results[mode][method].append(r)
                    print(f"  round {round_index + 1} {mode:<7}{method:<8} wall {r['wall_s']:6.1f} s, "
                          f"CPU {r['cpu_s']:6.1f} s, train_runtime {r['train_runtime']:6.1f} s, {r['steps']} steps, "
                          f"{r['epochs']:.1f} epochs", flush=True)

    print(f"\ndevice={args.device} threads={torch.get_num_threads()} DINOv2 hidden={args.hidden_size} "
          f"layers={args.layers} heads={args.heads} mlp={args.mlp_size} patch={args.patch_size} "
          f"image={args.image_size}; digits, batch {args.batch_size}, {args.steps} steps, max_eval_samples "
          f"{args.max_eval_samples}, {args.rounds} round(s); total {time.perf_counter() - began:.0f} s")
    clock = "cpu_s" if common.primary_clock(args.device) == "cpu" else "wall_s"
    print(f"verdicts on the {'process CPU' if clock == 'cpu_s' else 'wall'} time of whole run_training() calls; "
          f"'loop x CE' is train_runtime's (wall) ratio")
    print(f"| {'mode':<7}| {'CE s':>7} | {'GRPO s':>7} | {'time x CE':>9} | {'CE wall s':>9} | {'GRPO wall s':>11} | "
          f"{'wall x CE':>9} | {'loop x CE':>9} | {'target':>6} |      |")
    print(f"|{'-' * 8}|{'-' * 9}|{'-' * 9}|{'-' * 11}|{'-' * 11}|{'-' * 13}|{'-' * 11}|{'-' * 11}|{'-' * 8}|{'-' * 6}|")
    summary = []
    for mode in args.modes:
        runs = results[mode]

        def med(key, method, runs=runs):
            return common.median([r[key] for r in runs[method]])

        def ratio(key, runs=runs):
            return common.median([g[key] / c[key] for g, c in zip(runs["grpo-rm"], runs["ce"])])

        target = TARGETS.get(mode)
        verdict = common.verdict(ratio(clock), target) if target else "-"
        print(f"| {mode:<7}| {med(clock, 'ce'):>7.1f} | {med(clock, 'grpo-rm'):>7.1f} | {ratio(clock):>9.3f} | "
              f"{med('wall_s', 'ce'):>9.1f} | {med('wall_s', 'grpo-rm'):>11.1f} | {ratio('wall_s'):>9.3f} | "
              f"{ratio('train_runtime'):>9.3f} | {target or '-':>6} | {verdict:<4} |")
        summary.append(f"{mode} {ratio(clock):.2f}" + (f" (<= {target}) {verdict}" if target else "")
                       + f" [wall {ratio('wall_s'):.2f}]")
    print(f"\nSUMMARY GRPO-RM/CE whole-run {'CPU' if clock == 'cpu_s' else 'wall'} time: " + "; ".join(summary))


if __name__ == "__main__":
    main()
