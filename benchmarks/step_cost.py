"""Time and memory of one optimizer step of GRPO-RM relative to cross-entropy, same model, same run.

GRPO-RM adds a forward pass of the frozen old policy (and of the reference policy when
beta > 0) and a frozen copy of the weights. This prints absolute figures and ratios to
cross-entropy. Runs on GPU when there is one, else CPU.

    python benchmarks/step_cost.py --hidden_size 384 --layers 12 --image_size 224 --batch_size 32
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import torch
from transformers import Dinov2Config, Dinov2Model

from grpo_rm.config import ModelArguments, ObjectiveArguments
from grpo_rm.methods import FrozenPolicy, build_method
from grpo_rm.tasks import build_model


def measure(method_name: str, encoder_dir: str, args, device: torch.device) -> dict:
    torch.manual_seed(0)
    model = build_model(ModelArguments(model_name_or_path=encoder_dir, image_size=args.image_size),
                        [str(i) for i in range(args.num_classes)]).to(device)
    method = build_method(ObjectiveArguments(method=method_name, beta=args.beta))
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5)
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    old = FrozenPolicy(model) if method.needs_old_policy else None
    ref = FrozenPolicy(model) if method.needs_reference_policy else None
    pixels = torch.randn(args.batch_size, 3, args.image_size, args.image_size, device=device)
    labels = torch.randint(0, args.num_classes, (args.batch_size,), device=device)
    times = []
    for step in range(args.warmup + args.steps):
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
            logits = model(pixel_values=pixels)
            old_logits = old(pixel_values=pixels) if old else None
            ref_logits = ref(pixel_values=pixels) if ref else None
        loss = method(logits, labels, old_logits, ref_logits).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated() / 2**20 if device.type == "cuda" else float("nan")
    return {"step_ms": 1000 * statistics.median(times), "peak_mib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hidden_size", type=int, default=192)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--image_size", type=int, default=112)
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--num_classes", type=int, default=100)
    parser.add_argument("--beta", type=float, default=0.0)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--bf16", action="store_true")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    config = Dinov2Config(hidden_size=args.hidden_size, num_hidden_layers=args.layers,
                          num_attention_heads=max(1, args.hidden_size // 64), intermediate_size=4 * args.hidden_size,
                          patch_size=14 if args.image_size % 14 == 0 else 16, image_size=args.image_size)
    with tempfile.TemporaryDirectory() as encoder_dir:
        Dinov2Model(config).save_pretrained(encoder_dir)
        results = {name: measure(name, encoder_dir, args, device) for name in ("ce", "grpo-rm")}
    print(f"device={device} hidden={args.hidden_size} layers={args.layers} image={args.image_size} "
          f"batch={args.batch_size} classes={args.num_classes} beta={args.beta} bf16={args.bf16}")
    print(f"{'method':<10}{'step ms':>10}{'peak MiB':>10}{'time x ce':>11}{'mem x ce':>10}")
    base = results["ce"]
    for name, r in results.items():
        print(f"{name:<10}{r['step_ms']:>10.1f}{r['peak_mib']:>10.0f}{r['step_ms'] / base['step_ms']:>11.2f}"
              f"{r['peak_mib'] / base['peak_mib']:>10.2f}")


if __name__ == "__main__":
    main()
