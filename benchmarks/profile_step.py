"""Where a GRPO-RM step's time goes, next to a cross-entropy step: phases and top operators.

Runs the training loop's own step (``benchmarks/common.py``: ``training_step``, ``clip_gradients``,
AdamW) with each piece wrapped in a timer and a ``torch.profiler.record_function`` label:

- ``forward``: the training model's forward (``model(**inputs, return_frozen_output=True)``)
- ``old_policy_forward``: the frozen old policy (GRPO-RM only)
- ``loss``: the method (``cross_entropy_loss`` or ``grpo_rm_loss``)
- ``backward``: ``accelerator.backward(loss)``
- ``clip_grad``: ``clip_gradients`` (the gradient norm)
- ``optimizer``: ``optimizer.step()`` and ``zero_grad``

Phase shares come from timers (the process's CPU time on CPU, robust to other jobs' load; wall
time on a GPU) over ``--steps`` steps per method (methods alternate step by
step, so other processes' load hits both alike; medians per phase); the operator table from
``torch.profiler`` over ``--profile_steps`` steps of each method. The summary, printed last, says
how much of GRPO-RM's extra time is the old-policy forward.

    python benchmarks/profile_step.py                    # full fine-tuning, CPU: about 1-2 minutes
    python benchmarks/profile_step.py --mode last2
"""

from __future__ import annotations

import argparse
import tempfile
from collections import defaultdict

import common  # benchmarks/common.py
import torch
from torch.profiler import ProfilerActivity, profile, record_function

from grpo_rm.training.steps import clip_gradients, training_step

PHASES = ("forward", "old_policy_forward", "loss", "backward", "clip_grad", "optimizer")


class Clock:
    """Wall seconds per phase of the current step, each phase also a profiler label."""

    def __init__(self, device):
        self.device = device
        self.now = common.clock_function(device)  # process CPU time on CPU, wall time on a GPU
        self.seconds = defaultdict(float)

    def region(self, name: str, function):
        def timed(*args, **kwargs):
            common.synchronize(self.device)
            start = self.now()
            with record_function(name):
                result = function(*args, **kwargs)
            common.synchronize(self.device)
            self.seconds[name] += self.now() - start
            return result

        return timed


def instrumented_step(step: common.Step, batch: dict, clock: Clock, max_grad_norm: float = 1.0) -> float:
    """One optimizer step exactly as ``common.build_step``'s ``run`` does, with each piece timed."""
    accelerator = step.accelerator
    model = clock.region("forward", step.model)
    old_policy = clock.region("old_policy_forward", step.old_policy) if step.old_policy is not None else None
    method = clock.region("loss", step.method)
    backward = accelerator.backward
    accelerator.backward = clock.region("backward", backward)  # what training_step calls
    try:
        common.synchronize(clock.device)
        start = clock.now()
        training_step(accelerator, model, method, old_policy, None, batch)
        clock.region("clip_grad", clip_gradients)(accelerator, step.model, max_grad_norm)

        def optimizer_step():
            step.optimizer.step()
            step.optimizer.zero_grad(set_to_none=True)

        clock.region("optimizer", optimizer_step)()
        common.synchronize(clock.device)
        return clock.now() - start
    finally:
        del accelerator.backward  # the instance attribute; the class's method shows through again


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    common.add_shape_arguments(parser)
    parser.add_argument("--mode", choices=list(common.MODES), default="full")
    parser.add_argument("--steps", type=int, default=12, help="timed steps per method (phase shares)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--profile_steps", type=int, default=2, help="steps per method under torch.profiler")
    parser.add_argument("--top", type=int, default=15, help="operators listed per method")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: 1 on CPU)")
    parser.add_argument("--bf16", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    common.set_threads(args.threads, args.device)
    device = torch.device(args.device)
    print(common.machine_line(), flush=True)
    with tempfile.TemporaryDirectory() as encoder_dir:
        common.save_random_dinov2(encoder_dir, args.hidden_size, args.layers, args.heads,
                                  args.mlp_size or 4 * args.hidden_size, args.patch_size, args.image_size)
        accelerator = common.accelerator_for(device.type, "bf16" if args.bf16 else "no")
        batch = common.random_batch(args.batch_size, args.image_size, args.num_classes, device)
        steps = {m: common.build_step(encoder_dir, args.mode, m, args.num_classes, accelerator,
                                      image_size=args.image_size) for m in common.METHODS}
        for m in common.METHODS:
            for _ in range(args.warmup):
                steps[m].run(batch)

        # phase timers, methods alternating step by step
        phases = {m: defaultdict(list) for m in common.METHODS}
        for index in range(args.steps):
            for m in (common.METHODS if index % 2 == 0 else common.METHODS[::-1]):
                clock = Clock(device)
                total = instrumented_step(steps[m], batch, clock)
                for name in PHASES:
                    phases[m][name].append(clock.seconds.get(name, 0.0))
                phases[m]["other"].append(total - sum(clock.seconds.values()))
                phases[m]["total"].append(total)

        # operator tables
        activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
        tables = {}
        for m in common.METHODS:
            with profile(activities=activities) as prof:
                for _ in range(args.profile_steps):
                    instrumented_step(steps[m], batch, Clock(device))
            sort_by = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
            tables[m] = prof.key_averages().table(sort_by=sort_by, row_limit=args.top)

    for m in common.METHODS:
        print(f"\n=== torch.profiler, {m}, {args.mode}, {args.profile_steps} steps: "
              f"top {args.top} operators by self time")
        print(tables[m])

    med = {m: {name: 1000 * common.median(values) for name, values in phases[m].items()} for m in common.METHODS}
    print(f"\ndevice={device} threads={torch.get_num_threads()} mode={args.mode} {common.shape_line(args)} "
          f"bf16={args.bf16}; median {common.primary_clock(device)} ms per phase over {args.steps} steps per method "
          f"(methods alternating)")
    print(f"| {'phase':<19}| {'CE ms':>7} | {'CE %':>5} | {'GRPO ms':>7} | {'GRPO %':>6} | {'GRPO-CE ms':>10} |")
    print(f"|{'-' * 20}|{'-' * 9}|{'-' * 7}|{'-' * 9}|{'-' * 8}|{'-' * 12}|")
    for name in (*PHASES, "other", "total"):
        ce, grpo = med["ce"][name], med["grpo-rm"][name]
        print(f"| {name:<19}| {ce:>7.1f} | {100 * ce / med['ce']['total']:>5.1f} | {grpo:>7.1f} | "
              f"{100 * grpo / med['grpo-rm']['total']:>6.1f} | {grpo - ce:>10.1f} |")
    ce_total, grpo_total = med["ce"]["total"], med["grpo-rm"]["total"]
    old = med["grpo-rm"]["old_policy_forward"]
    extra = grpo_total - ce_total
    fwd = med["grpo-rm"]["forward"]
    print()
    print(f"SUMMARY {args.mode}: GRPO-RM step {grpo_total:.1f} ms vs CE {ce_total:.1f} ms "
          f"(x{grpo_total / ce_total:.2f}); "
          f"old-policy forward {old:.1f} ms = {100 * old / grpo_total:.0f}% of the GRPO-RM step, "
          f"{old / fwd:.2f}x the training forward, {100 * old / extra if extra > 0 else float('nan'):.0f}% of the "
          f"extra {extra:.1f} ms; current forward {fwd:.1f} / backward {med['grpo-rm']['backward']:.1f} / "
          f"optimizer+clip {med['grpo-rm']['optimizer'] + med['grpo-rm']['clip_grad']:.1f} / "
          f"loss {med['grpo-rm']['loss']:.1f} ms (CE loss {med['ce']['loss']:.1f} ms)")


if __name__ == "__main__":
    main()
