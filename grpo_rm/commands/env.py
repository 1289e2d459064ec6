"""``grpo-rm env``: what a bug report needs to reproduce a problem: versions, platform, processes and devices."""

from __future__ import annotations

import argparse
import os
import platform
from importlib.metadata import PackageNotFoundError, version

import torch
from accelerate import PartialState
from accelerate.utils import is_bf16_available, is_fp16_available
from . import COMMANDS

HELP = COMMANDS["env"].help
LIBRARIES = ("torch", "transformers", "accelerate", "datasets", "sentence-transformers", "huggingface_hub")


def environment_info() -> dict[str, str]:
    """Name -> value, in the order a reader wants them."""
    info = {"grpo-rm version": installed_version("grpo-rm"), "Platform": platform.platform(),
            "Python version": platform.python_version()}
    info.update({f"{library} version": installed_version(library) for library in LIBRARIES})
    info["torch CUDA build"] = torch.version.cuda or "none"
    info["Device"] = _devices()
    info["CPU cores / torch threads"] = f"{os.cpu_count()} / {torch.get_num_threads()}"
    # The state grpo-rm's runs would get here (runtime.make_accelerator): under torchrun or accelerate
    # launch, this process's view of the group.
    state = PartialState(cpu=not torch.accelerator.is_available())
    info["accelerate processes"] = (f"{state.num_processes} ({state.distributed_type.value}, this is process "
                                    f"{state.process_index})")
    info["accelerate device"] = str(state.device)
    # accelerate accepts fp16 on CPU but computes in float32 there.
    available = {"fp16": state.device.type != "cpu" and is_fp16_available(), "bf16": is_bf16_available()}
    info["mixed precision available"] = ", ".join(name for name, ok in available.items() if ok) or "none"
    return info


def installed_version(distribution: str) -> str:
    try:
        return version(distribution)
    except PackageNotFoundError:
        return "not installed"


def _devices() -> str:
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(index) for index in range(torch.cuda.device_count())]
        kinds = names[0] if len(set(names)) == 1 else ", ".join(names)
        return f"CUDA, {len(names)} x {kinds}"
    if torch.accelerator.is_available():
        return str(torch.accelerator.current_accelerator())
    return "CPU only"


def build_parser() -> argparse.ArgumentParser:
    return argparse.ArgumentParser(prog="grpo-rm env", description=HELP)


def main(args: argparse.Namespace) -> None:
    print("Paste these lines into your bug report, with the command you ran and its --debug output:\n")
    print("\n".join(f"- {key}: {value}" for key, value in environment_info().items()))
