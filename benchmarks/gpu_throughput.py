"""GPU throughput and model-FLOPs utilisation of GRPO-RM and cross-entropy on DINOv2 ViT-S/14 and ViT-B/14.

Random-weights DINOv2 shapes (facebook/dinov2-small: hidden 384, 12 blocks, 6 heads, MLP 1536;
facebook/dinov2-base: 768, 12, 12, 3072; patch 14) at 224 px, full fine-tuning, bf16 autocast
(``mixed_precision=bf16``, as ``--mixed_precision bf16`` runs), a linear head on the class token.
The step is the training loop's own (``benchmarks/common.py``: ``training_step``, ``clip_gradients``,
AdamW); data loading is not in it. Both methods are built in one process and stepped in
alternating blocks, ``--rounds`` times; figures are medians over the rounds.

MFU = model FLOPs per second / the card's bf16 matmul peak *measured here* (a loop of large
``torch.matmul``), not the datasheet's. Model FLOPs per image and step (matmul FLOPs only;
norms, GELU, softmax and the optimizer are not counted, as is usual):

    T = 1 + (image/patch)^2 tokens, D hidden, M MLP width, L blocks, C classes
    forward F = L * (2*T*(4*D^2 + 2*D*M)      # q, k, v, output projections; MLP in and out
                     + 4*T^2*D)                # q.k^T and attention.v
              + 2*(image/patch)^2*(3*patch^2)*D + 2*D*C   # patch embedding; head
    backward = 2 F; cross-entropy step = 3 F; GRPO-RM step = 4 F (its old-policy forward is work).

(For M = 4D the block term is 24*T*D^2 + 4*T^2*D: Narayanan et al. 2021, "Efficient large-scale
language model training on GPU clusters using Megatron-LM", sec. 5.1, without recomputation and
vocabulary; backward = 2 x forward and the attention term as in Kaplan et al. 2020, "Scaling laws
for neural language models", sec. 2.1, and Chowdhery et al. 2022, "PaLM", appendix B, which
also defines MFU.)

Targets (issue "Scale and speed"): GRPO-RM ViT-B/14 MFU >= 35 %; GRPO-RM's step no slower
relative to CE than on CPU, i.e. CE images/s / GRPO-RM images/s <= 1.33 (full fine-tuning).

    python benchmarks/gpu_throughput.py                     # needs a CUDA device; ~1-3 minutes
    python benchmarks/gpu_throughput.py --dry_run           # FLOP counts only, no GPU needed
    python benchmarks/gpu_throughput.py --models vit-b14 --batch_size 256 --compile
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time

import common  # benchmarks/common.py
import torch

MFU_TARGET = 0.35  # GRPO-RM, ViT-B/14
SLOWDOWN_TARGET = 1.33  # CE images/s over GRPO-RM images/s, full fine-tuning (the CPU step target)


def forward_flops(hidden: int, layers: int, mlp: int, patch: int, image_size: int, num_classes: int) -> dict:
    """Matmul FLOPs of one image's forward pass, by part (the formula in the module docstring)."""
    patches = (image_size // patch) ** 2
    tokens = 1 + patches
    parts = {
        "projections": layers * 2 * tokens * 4 * hidden * hidden,
        "mlp": layers * 2 * tokens * 2 * hidden * mlp,
        "attention": layers * 4 * tokens * tokens * hidden,
        "patch_embedding": 2 * patches * 3 * patch * patch * hidden,
        "head": 2 * hidden * num_classes,
    }
    parts["forward"] = sum(parts.values())
    parts["tokens"] = tokens
    return parts


def step_flops(forward: float, method: str) -> float:
    """Per image: forward + backward (2 x forward), plus the old policy's forward for GRPO-RM."""
    return 3 * forward + (forward if method == "grpo-rm" else 0)


def matmul_peak(size: int, repeats: int, trials: int) -> float:
    """Best bf16 matmul FLOP/s of ``trials`` timed loops of ``repeats`` [size x size] @ [size x size]."""
    a = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    b = torch.randn(size, size, device="cuda", dtype=torch.bfloat16)
    out = torch.empty(size, size, device="cuda", dtype=torch.bfloat16)
    for _ in range(3):
        torch.matmul(a, b, out=out)
    best = 0.0
    for _ in range(trials):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        for _ in range(repeats):
            torch.matmul(a, b, out=out)
        end.record()
        torch.cuda.synchronize()
        best = max(best, 2 * size**3 * repeats / (start.elapsed_time(end) / 1000))
    del a, b, out
    torch.cuda.empty_cache()
    return best


def measure_model(name: str, args, peak: float) -> dict:
    hidden, layers, heads, mlp = common.SHAPES[name]
    flops = forward_flops(hidden, layers, mlp, args.patch_size, args.image_size, args.num_classes)
    compile_mode = (args.compile_mode if args.compile_mode != "default" else None) if args.compile else False
    results = {}
    with tempfile.TemporaryDirectory() as encoder_dir:
        common.save_random_dinov2(encoder_dir, hidden, layers, heads, mlp, args.patch_size, args.image_size)
        accelerator = common.accelerator_for("cuda", "bf16", compile_mode)
        batch = common.random_batch(args.batch_size, args.image_size, args.num_classes, "cuda")
        steps, memory = {}, {}
        for method in common.METHODS:
            torch.cuda.synchronize()
            before = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
            steps[method] = common.build_step(encoder_dir, "full", method, args.num_classes, accelerator,
                                              image_size=args.image_size, compile_mode=compile_mode)
            for _ in range(args.warmup):
                steps[method].run(batch)
            torch.cuda.synchronize()
            memory[method] = (torch.cuda.max_memory_allocated() - before) / 2**30
        seconds = {method: [] for method in common.METHODS}
        for round_index in range(args.rounds):
            for method in (common.METHODS if round_index % 2 == 0 else common.METHODS[::-1]):
                torch.cuda.synchronize()
                start = time.perf_counter()
                for _ in range(args.steps):
                    steps[method].run(batch)
                torch.cuda.synchronize()
                seconds[method].append((time.perf_counter() - start) / args.steps)
        del steps
        torch.cuda.empty_cache()
    for method in common.METHODS:
        step_s = common.median(seconds[method])
        images_per_s = args.batch_size / step_s
        results[method] = {"step_ms": 1000 * step_s, "images_per_s": images_per_s,
                           "mfu": images_per_s * step_flops(flops["forward"], method) / peak,
                           "model_tflops": images_per_s * step_flops(flops["forward"], method) / 1e12,
                           "memory_gib": memory[method]}
    results["slowdown"] = common.median([g / c for g, c in zip(seconds["grpo-rm"], seconds["ce"])])
    results["flops"] = flops
    return results


def print_flops(args) -> None:
    print(f"model FLOPs per image at {args.image_size} px, patch {args.patch_size}, {args.num_classes} classes "
          f"(matmuls only; backward = 2 x forward; GRPO-RM adds the old-policy forward)")
    print(f"| {'model':<8}| {'tokens':>6} | {'forward GFLOP':>13} | {'CE step GFLOP':>13} | "
          f"{'GRPO-RM step GFLOP':>18} |")
    print(f"|{'-' * 9}|{'-' * 8}|{'-' * 15}|{'-' * 15}|{'-' * 20}|")
    for name in args.models:
        hidden, layers, _, mlp = common.SHAPES[name]
        f = forward_flops(hidden, layers, mlp, args.patch_size, args.image_size, args.num_classes)
        print(f"| {name:<8}| {f['tokens']:>6} | {f['forward'] / 1e9:>13.2f} | "
              f"{step_flops(f['forward'], 'ce') / 1e9:>13.2f} | "
              f"{step_flops(f['forward'], 'grpo-rm') / 1e9:>18.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--models", nargs="+", choices=list(common.SHAPES), default=list(common.SHAPES))
    parser.add_argument("--image_size", type=int, default=224)
    parser.add_argument("--patch_size", type=int, default=14)
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--num_classes", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (medians over them)")
    parser.add_argument("--steps", type=int, default=10, help="steps per method per round")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--compile", action="store_true", help="torch.compile the model and the old policy "
                                                               "(as --torch_compile)")
    parser.add_argument("--compile_mode", default="default", help="torch.compile mode with --compile")
    parser.add_argument("--matmul_size", type=int, default=8192)
    parser.add_argument("--matmul_repeats", type=int, default=50)
    parser.add_argument("--dry_run", action="store_true", help="print the FLOP counts and exit (no GPU needed)")
    args = parser.parse_args()

    print(common.machine_line(), flush=True)
    print_flops(args)
    if args.dry_run:
        print("\nSUMMARY dry run: FLOP counts only; run without --dry_run on a CUDA device for images/s and MFU")
        return
    if not torch.cuda.is_available():
        print("\nno CUDA device: this benchmark needs a GPU (torch.cuda.is_available() is False). "
              "Use --dry_run for the FLOP counts, and benchmarks/step_cost.py for CPU ratios.", file=sys.stderr)
        raise SystemExit(2)
    peak = matmul_peak(args.matmul_size, args.matmul_repeats, trials=5)
    print(f"measured bf16 matmul peak ({args.matmul_size}^3, best of 5 x {args.matmul_repeats}): "
          f"{peak / 1e12:.1f} TFLOP/s", flush=True)
    results = {}
    for name in args.models:
        try:
            results[name] = measure_model(name, args, peak)
        except torch.cuda.OutOfMemoryError:
            raise SystemExit(f"out of GPU memory for {name} at batch {args.batch_size}: pass a smaller --batch_size")
        r = results[name]
        print(f"  {name}: CE {r['ce']['images_per_s']:.0f} img/s, GRPO-RM {r['grpo-rm']['images_per_s']:.0f} img/s",
              flush=True)

    print(f"\n{torch.cuda.get_device_name()}, bf16 autocast, full fine-tuning, {args.image_size} px, batch "
          f"{args.batch_size}, compile={args.compile}; medians of {args.rounds} alternating rounds x {args.steps} "
          f"steps; "
          f"peak {peak / 1e12:.1f} TFLOP/s measured")
    print(f"| {'model':<8}| {'method':<8}| {'step ms':>8} | {'images/s':>8} | {'model TFLOP/s':>13} | {'MFU':>6} | "
          f"{'peak GiB':>8} |")
    print(f"|{'-' * 9}|{'-' * 9}|{'-' * 10}|{'-' * 10}|{'-' * 15}|{'-' * 8}|{'-' * 10}|")
    for name, r in results.items():
        for method in common.METHODS:
            m = r[method]
            print(f"| {name:<8}| {method:<8}| {m['step_ms']:>8.1f} | {m['images_per_s']:>8.0f} | "
                  f"{m['model_tflops']:>13.1f} | {100 * m['mfu']:>5.1f}% | {m['memory_gib']:>8.2f} |")
    summary = []
    for name, r in results.items():
        summary.append(f"{name} CE/GRPO-RM images/s {r['slowdown']:.2f} (<= {SLOWDOWN_TARGET}) "
                       f"{common.verdict(r['slowdown'], SLOWDOWN_TARGET)}")
        if name == "vit-b14":
            mfu = r["grpo-rm"]["mfu"]
            summary.append(f"vit-b14 GRPO-RM MFU {100 * mfu:.1f}% (>= {100 * MFU_TARGET:.0f}%) "
                           f"{'PASS' if mfu >= MFU_TARGET else 'MISS'}")
    print("\nSUMMARY " + "; ".join(summary))


if __name__ == "__main__":
    main()
