"""Publishing a finished run on the Hugging Face Hub: the final model, ``best_model/``, the model cards, the
results and the logs, as one model repository."""

from __future__ import annotations

import logging
import shlex
from pathlib import Path
from typing import Any, Mapping

from huggingface_hub import create_repo, upload_folder

from ..config import RunConfig, TrainingArguments
from .model_card import write_model_cards

logger = logging.getLogger(__name__)

# Checkpoints are for resuming on this machine; hidden names are staging files of interrupted writes.
IGNORE_PATTERNS = ("checkpoint-*", ".*", "*/.*")


class HubPushError(RuntimeError):
    """The upload failed after training; every local file is kept."""


def hub_model_id(args: TrainingArguments) -> str:
    """The repository the run is pushed to: ``--hub_model_id``, else the output directory's name (in the
    namespace of the token's user)."""
    return args.hub_model_id or Path(args.output_dir).resolve().name


def push_run(config: RunConfig, results: Mapping[str, Any]) -> str:
    """Create the repository if needed and upload the run directory; returns the repository id.

    The token is ``--hub_token``, else the one huggingface_hub finds (``HF_TOKEN``, ``hf auth login``).
    """
    args = config.training
    output_dir = Path(args.output_dir)
    requested = hub_model_id(args)
    try:
        # private=None leaves a new repository to the account's default visibility.
        repo_id = create_repo(requested, token=args.hub_token, private=args.hub_private_repo or None,
                              exist_ok=True).repo_id
    except Exception as error:  # offline, no or a wrong token, a taken name: each its own type
        raise _push_error(output_dir, requested, args.hub_private_repo, error) from error
    if repo_id != requested:  # the namespace the Hub chose: the cards' loading instructions must name it
        write_model_cards(output_dir, config, results, repo_id)
    try:
        upload_folder(repo_id=repo_id, folder_path=output_dir, token=args.hub_token,
                      ignore_patterns=list(IGNORE_PATTERNS), commit_message="Upload model trained with grpo-rm")
    except Exception as error:
        raise _push_error(output_dir, repo_id, args.hub_private_repo, error) from error
    logger.info("pushed %s to https://huggingface.co/%s", output_dir, repo_id)
    return repo_id


def _push_command(output_dir: Path, repo_id: str, private: bool) -> str:
    """The command line that pushes the run later, as ``push_run`` does."""
    excludes = " ".join(f"--exclude {shlex.quote(pattern)}" for pattern in IGNORE_PATTERNS)
    return (f"hf upload {shlex.quote(repo_id)} {shlex.quote(str(output_dir))} . {excludes}"
            + (" --private" if private else ""))


def _push_error(output_dir: Path, repo_id: str, private: bool, error: Exception) -> HubPushError:
    reason = " ".join(str(error).split()) or type(error).__name__
    return HubPushError(
        f"training finished and every file is in {output_dir}, but pushing it to the Hub as {repo_id} failed "
        f"({reason}). Push it later, once online and logged in (hf auth login, or HF_TOKEN set), with: "
        f"{_push_command(output_dir, repo_id, private)}"
    )
