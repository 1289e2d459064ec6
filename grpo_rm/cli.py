"""The ``grpo-rm`` command: parses arguments and dispatches to ``grpo_rm.commands``; nothing else."""

from __future__ import annotations

import logging
import os
import sys
from typing import Optional, Sequence

from .commands import COMMANDS, command_module
from .runtime import openmp_settings_for_shared_cores

def _share_busy_cores() -> None:
    """On a machine other work already keeps busy, take the cores that look free, and let idle threads sleep soon
    (``runtime.openmp_settings_for_shared_cores``; the user's own OpenMP variables win)."""
    if not hasattr(os, "getloadavg"):
        return
    settings = openmp_settings_for_shared_cores(os.getloadavg()[0], os.cpu_count() or 1, dict(os.environ))
    if settings:
        os.environ.update(settings)
        logging.getLogger(__name__).info(
            "the machine is busy (load %.1f on %d cores): %s; give each run its share with --num_threads",
            os.getloadavg()[0], os.cpu_count() or 1, ", ".join(f"{key}={value}" for key, value in settings.items()))


def _quiet_libraries() -> None:
    """Keep one progress bar (ours) on screen; the libraries' own bars and chatter drown it."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
    for noisy in ("httpx", "urllib3", "filelock", "datasets", "fsspec"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _error_line(error: BaseException) -> str:
    """The error's message on one line; the traceback is for ``--debug``."""
    text = str(error)
    if text.startswith("Caught ") and "Original Traceback" in text:
        # A DataLoader worker's error carries the worker's traceback; its last line is the error itself.
        text = text.rstrip().splitlines()[-1].split(": ", 1)[-1]
    return " ".join(text.split())


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("GRPO_RM_DEBUG", "") not in ("", "0")
    argv = [arg for arg in argv if arg != "--debug"]
    if not argv or argv[0] in ("-h", "--help") or argv[0] not in COMMANDS:
        lines = [f"  {name:<13} {command.help}" for name, command in COMMANDS.items()]
        print("usage: grpo-rm {" + ",".join(COMMANDS) + "} [--help] [--debug] ...\n\ncommands:\n" + "\n".join(lines)
              + "\n\n--debug (or GRPO_RM_DEBUG=1): show the traceback of an error instead of one line")
        return 0 if not argv or argv[0] in ("-h", "--help") else 2
    logging.basicConfig(format="%(asctime)s %(levelname)s %(name)s: %(message)s", level=logging.INFO)
    _share_busy_cores()  # before torch (imported with the command) loads OpenMP, which reads these once
    _quiet_libraries()
    command = command_module(argv[0])
    from .runtime import end_process_group
    from .reporting.hub import HubPushError
    from .training import PREEMPTED_EXIT_CODE, TrainingPreempted

    try:
        command.main(command.build_parser().parse_args(argv[1:]))
    except TrainingPreempted as error:
        print(f"grpo-rm {argv[0]}: {error}", file=sys.stderr)
        return PREEMPTED_EXIT_CODE
    except (ValueError, FileNotFoundError, FileExistsError, FloatingPointError, HubPushError) as error:
        if debug:
            raise
        print(f"grpo-rm {argv[0]}: error: {_error_line(error)}", file=sys.stderr)
        return 1
    finally:
        end_process_group()  # a launch's runs share one (compare's rows); it ends with the command
    return 0


if __name__ == "__main__":
    sys.exit(main())
