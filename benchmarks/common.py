"""What the benchmark scripts share: a random-weights DINOv2 on disk, and the training loop's own step.

The step is the loop's code, not a copy of it: ``grpo_rm.training.loop`` builds the optimizer
(``build_optimizer``), freezes unreached parameters (``freeze_unused_parameters``), runs the
forward passes, the method's loss and the backward (``training_step``) and clips the gradients
(``clip_gradients``), all from ``grpo_rm.training.steps``; this module only adds ``optimizer.step()`` / ``zero_grad`` as ``train`` does.
Left out of the timed step, the same for both methods: data loading, the LR scheduler and logging.
Those private names are the loop's; if the loop renames them, this module has to follow.

The scripts are run as ``python benchmarks/<name>.py`` from the repository root, which puts
this folder on ``sys.path``; ``import common`` finds this file.
"""

from __future__ import annotations

import inspect
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")

import torch
from transformers import Dinov2Config, Dinov2Model
from transformers.utils import logging as transformers_logging

from grpo_rm.config import ModelArguments, ObjectiveArguments, TrainingArguments
from grpo_rm.methods import FrozenPolicy, build_method
from grpo_rm.processing import ImageProcessing
from grpo_rm.runtime import keep_freed_cpu_memory, make_accelerator
from grpo_rm.tasks import build_model
from grpo_rm.training.steps import build_optimizer, clip_gradients, freeze_unused_parameters, training_step

transformers_logging.disable_progress_bar()  # no "Loading weights" bars between the figures

# mode name -> (freeze_backbone, train_last_n_blocks), as ModelArguments takes them
MODES = {"full": (False, None), "last2": (False, 2), "frozen": (True, None)}
METHODS = ("ce", "grpo-rm")

# DINOv2 ViT-S/14 and ViT-B/14 (facebook/dinov2-small, -base): hidden, layers, heads, MLP width
SHAPES = {"vit-s14": (384, 12, 6, 1536), "vit-b14": (768, 12, 12, 3072)}


def save_random_dinov2(directory: str | Path, hidden: int, layers: int, heads: int, mlp: int, patch: int,
                       image_size: int, seed: int = 0) -> str:
    """A randomly initialised DINOv2 saved like a hub checkpoint: config, safetensors weights and
    ``preprocessor_config.json`` (as ``grpo_rm.commands.demo.build_standin_encoder`` does)."""
    torch.manual_seed(seed)
    config = Dinov2Config(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=heads,
                          intermediate_size=mlp, patch_size=patch, image_size=image_size)
    Dinov2Model(config).save_pretrained(directory)
    ImageProcessing(image_size, image_mean=(0.5,) * 3, image_std=(0.5,) * 3).save_pretrained(directory)
    return str(directory)


def add_shape_arguments(parser, hidden=384, layers=12, heads=6, image_size=112, batch_size=8, patch_size=14,
                        num_classes=100) -> None:
    """The model, batch and image size, the same for both methods (``--mlp_size`` defaults to 4 x hidden).

    The CPU default is DINOv2 ViT-S/14's shape (facebook/dinov2-small: 384 wide, 12 blocks, 6 heads,
    MLP 1536, patch 14; random weights) at 112 px (64 patches + class token) and batch 8, which
    2 shared CPU cores step in about 1-2 s.
    """
    group = parser.add_argument_group("model and batch (the same for both methods)")
    group.add_argument("--hidden_size", type=int, default=hidden)
    group.add_argument("--layers", type=int, default=layers)
    group.add_argument("--heads", type=int, default=heads)
    group.add_argument("--mlp_size", type=int, default=None, help="default: 4 x hidden_size")
    group.add_argument("--patch_size", type=int, default=patch_size)
    group.add_argument("--image_size", type=int, default=image_size)
    group.add_argument("--batch_size", type=int, default=batch_size)
    group.add_argument("--num_classes", type=int, default=num_classes)


def shape_line(args) -> str:
    mlp = args.mlp_size or 4 * args.hidden_size
    return (f"DINOv2 hidden={args.hidden_size} layers={args.layers} heads={args.heads} mlp={mlp} "
            f"patch={args.patch_size} image={args.image_size} batch={args.batch_size} classes={args.num_classes}")


def accelerator_for(device: str, mixed_precision: str = "no", compile_mode=False):
    """The Accelerator ``train`` makes (``grpo_rm.runtime.make_accelerator``), on CPU or the GPU.

    ``compile_mode`` other than False compiles the prepared model as ``--torch_compile`` does
    (accelerate's TorchDynamoPlugin, inductor); None is torch.compile's default mode."""
    kwargs = {}
    if compile_mode is not False:
        from accelerate.utils import TorchDynamoPlugin

        kwargs["dynamo_plugin"] = TorchDynamoPlugin(backend="inductor", mode=compile_mode)
    accelerator = make_accelerator(use_cpu=device == "cpu", mixed_precision=mixed_precision, **kwargs)
    if accelerator.device.type == "cpu":
        keep_freed_cpu_memory()  # as train() does on CPU
    return accelerator


@dataclass
class Step:
    """One configuration (mode, method) ready to step: call ``run(batch)`` for one optimizer step."""

    mode: str
    method_name: str
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    run: Callable[[dict], None]
    accelerator: object
    method: object
    old_policy: FrozenPolicy | None


def build_step(encoder_dir: str, mode: str, method_name: str, num_classes: int, accelerator,
               image_size: int | None = None, learning_rate: float = 1e-5, max_grad_norm: float = 1.0,
               compile_mode=False, seed: int = 0, before_policies: Callable[[], None] | None = None) -> Step:
    """Model, optimizer and frozen policies as ``train`` sets them up, for ``mode`` and ``method_name``.

    ``before_policies`` is called after the model and optimizer exist and before the frozen copies are
    made (the memory benchmark takes its baseline there, so the old policy's copy counts as GRPO-RM's cost).
    """
    freeze_backbone, last_n = MODES[mode]
    torch.manual_seed(seed)
    model = build_model(ModelArguments(model_name_or_path=encoder_dir, image_size=image_size,
                                       freeze_backbone=freeze_backbone, train_last_n_blocks=last_n),
                        [str(i) for i in range(num_classes)])
    method = build_method(method_name, ObjectiveArguments(method=method_name, beta=0.0).settings())
    size = model.processor.image_size
    freeze_unused_parameters(model, {"pixel_values": torch.zeros(1, 3, size, size)})
    args = TrainingArguments(learning_rate=learning_rate, head_learning_rate=1e-3, max_grad_norm=max_grad_norm)
    optimizer = build_optimizer(model, args)
    model, optimizer = accelerator.prepare(model, optimizer)
    if before_policies is not None:
        before_policies()
    unwrapped = accelerator.unwrap_model(model)
    policy_kwargs = {}
    if compile_mode is not False:
        if "compile_mode" not in inspect.signature(FrozenPolicy).parameters:
            raise SystemExit("this FrozenPolicy takes no compile_mode")
        policy_kwargs["compile_mode"] = compile_mode
    old_policy = (FrozenPolicy(unwrapped, shares=unwrapped.frozen_part, **policy_kwargs) if method.needs_old_policy
                  else None)
    model.train()

    def run(batch: dict) -> None:
        training_step(accelerator, model, method, old_policy, None, batch)
        clip_gradients(accelerator, model, max_grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return Step(mode, method_name, model, optimizer, run, accelerator, method, old_policy)


def random_batch(batch_size: int, image_size: int, num_classes: int, device, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    pixels = torch.randn(batch_size, 3, image_size, image_size, generator=generator)
    labels = torch.randint(0, num_classes, (batch_size,), generator=generator)
    return {"inputs": {"pixel_values": pixels.to(device)}, "labels": labels.to(device)}


def synchronize(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(step: Step, batch: dict, device) -> dict:
    """Seconds of one optimizer step (synchronised on CUDA): ``wall`` and this process's ``cpu`` time.

    On a CPU shared with other jobs the process's CPU time (``time.process_time``, all its threads)
    is what the step costs a dedicated core; wall time also counts the time other jobs held the core.
    """
    synchronize(device)
    wall, cpu = time.perf_counter(), time.process_time()
    step.run(batch)
    synchronize(device)
    return {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu}


def clock_function(device):
    """``time.process_time`` on CPU, ``time.perf_counter`` on a GPU (see ``primary_clock``)."""
    return time.process_time if primary_clock(device) == "cpu" else time.perf_counter


def primary_clock(device) -> str:
    """The clock verdicts use: process CPU time on CPU (robust to other jobs' load), wall time on a GPU."""
    return "cpu" if torch.device(device).type == "cpu" else "wall"


def median(values):
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else 0.5 * (values[middle - 1] + values[middle])


def set_threads(threads, device) -> None:
    """``torch.set_num_threads``: ``threads`` when given, else 1 on CPU.

    On a CPU shared with other jobs, several intra-op threads wait at each operator's barrier for
    whichever thread the scheduler parked: on this project's 2-core machine under a load of 4-7 a step
    with 2 threads ran ~50x slower than with 1, and erratically. One thread measures the work itself.
    """
    if threads:
        torch.set_num_threads(threads)
    elif torch.device(device).type == "cpu":
        torch.set_num_threads(1)


def machine_line() -> str:
    if torch.cuda.is_available():
        where = torch.cuda.get_device_name()
    else:
        where = f"CPU only, {os.cpu_count()} logical cores, torch threads {torch.get_num_threads()}"
    try:
        load = "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "load average n/a"
    return (f"{platform.node() or 'host'}: {where}; {load}; torch {torch.__version__}, "
            f"python {platform.python_version()}")


def verdict(value: float, target: float) -> str:
    return "PASS" if value <= target else "MISS"

