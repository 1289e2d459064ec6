"""One training loop for every method and task: setup, steps, checkpoints.

The method (``ce`` or ``grpo-rm``) only supplies the loss, and says when its old policy is
refreshed; GRPO-RM additionally gets logits from the frozen old policy. All that a resume
needs lives in ``TrainState`` (and the checkpointed tensors), not in locals. ``train``
returns what it trained; what a run does afterwards (test evaluation, result files, model
cards, Hub) is the train command's (``grpo_rm.commands.train``).
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch
from accelerate import Accelerator, skip_first_batches
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, TorchDynamoPlugin, set_seed
from tqdm.auto import tqdm

from ..config import RunConfig
from ..evaluation import result_metrics
from ..files import BEST_MODEL_DIR, METRICS_LOG_NAME, TENSORBOARD_DIR
from ..methods import CrossEntropyMethod, FrozenPolicy, L2SPRegularizer, Method, build_method
from ..models import EncoderWithHead
from ..reporting import MetricsLog, tracker_config
from ..reporting.trackers import tracker_init_kwargs, tracker_project_name, tracker_run_ids, trackers_to_start
from ..representation import cached_training_loader
from ..runtime import finish_trackers, keep_freed_cpu_memory, make_accelerator
from ..seeding import derive_seed
from ..tasks import Task, build_task, task_class
from . import steps
from .checkpoints import (
    TrainingPreempted,
    check_resumable,
    list_checkpoints,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)
from .preemption import PreemptionWatch
from .state import MetricWindow, TrainState

logger = logging.getLogger(__name__)


@dataclass
class TrainOutput:
    """What ``train`` trained. The trackers are still open: the caller logs what it evaluates after training to
    them and then ends them (``runtime.finish_trackers``)."""

    model: EncoderWithHead  # unwrapped, on the run's device, in train mode
    prepared_model: torch.nn.Module  # the same model as accelerate prepared it (DDP, autocast): evaluate this
    task: Task  # its evaluation loaders set up on the accelerator
    accelerator: Accelerator
    state: TrainState
    method: Method
    metrics: dict  # what train_results.json holds: epochs, loss, runtime, throughput, steps
    resumed_from: Optional[Path]


def train(config: RunConfig, method: Optional[Method] = None) -> TrainOutput:
    """Train one run in ``config.training.output_dir``: checkpoints, ``metrics.jsonl``, the trackers and
    ``best_model/`` (the epoch of best validation score) are written as it goes.

    ``method`` replaces the one the config describes, e.g. ``GrpoRmMethod(reward=my_reward_fn)``
    for a reward callable ``(old_probs [Q, C], targets [Q]) -> rewards [Q, C]``.
    Raises ``TrainingPreempted`` after SIGTERM / SIGUSR1, once a checkpoint is written.
    """
    # --- setup ---
    args = config.training
    if not args.output_dir:
        raise ValueError("output_dir is required")
    if args.cache_frozen_features:
        _check_features_can_be_cached(config)
    output_dir = Path(args.output_dir)
    checkpoint = resolve_checkpoint(args.resume_from_checkpoint, output_dir)
    if checkpoint is not None:
        check_resumable(checkpoint, config)
    else:
        _check_output_dir(output_dir, args.overwrite_output_dir, resuming=args.resume_from_checkpoint is not None)
    accelerator = make_accelerator(
        use_cpu=args.use_cpu,
        mixed_precision=args.mixed_precision,
        log_with=trackers_to_start(args.report_to),
        # TensorBoard writes to <logging_dir>/<project name>: under tensorboard/ whatever the project is called.
        project_config=ProjectConfiguration(project_dir=str(output_dir),
                                            logging_dir=str(output_dir / TENSORBOARD_DIR)),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        dynamo_plugin=TorchDynamoPlugin(backend="inductor", mode=args.torch_compile_mode) if args.torch_compile else None,
    )
    if checkpoint is None and args.overwrite_output_dir and accelerator.is_main_process:
        for old in list_checkpoints(output_dir):  # so that a later "latest" never resumes the run replaced
            shutil.rmtree(old)
    accelerator.wait_for_everyone()
    if args.num_threads:
        torch.set_num_threads(args.num_threads)
    set_seed(args.seed)
    if accelerator.device.type == "cpu":
        keep_freed_cpu_memory()  # the old policy's forward would page-fault its activations in again each step

    task = build_task(config)
    model = task.build_model()
    method = method or build_method(config.objective.method, config.objective.settings(), task.ignore_index)
    processor = model.processor
    train_loader = task.train_loader(processor)
    train_samples = len(train_loader.dataset)

    steps.freeze_unused_parameters(model, task.dummy_inputs(processor))
    optimizer = steps.build_optimizer(model, args)
    caching_seconds = 0.0
    if args.cache_frozen_features:  # the frozen encoder reads the training set now, once; training reads its features
        caching_start = time.perf_counter()
        train_loader = cached_training_loader(model.to(accelerator.device), train_loader, accelerator,
                                              show_progress=not args.disable_tqdm)
        caching_seconds = time.perf_counter() - caching_start
    model, optimizer, train_loader = accelerator.prepare(model, optimizer, train_loader)
    task.setup_evaluation(processor, accelerator)
    if len(train_loader) == 0:
        raise ValueError("the training split is empty")
    steps_per_epoch = math.ceil(len(train_loader) / args.gradient_accumulation_steps)  # optimizer steps
    head_warmup_steps = args.head_warmup_epochs * steps_per_epoch  # LP-FT's probing stage, before the method's
    total_steps = head_warmup_steps + (args.max_train_steps or args.num_train_epochs * steps_per_epoch)
    num_epochs = math.ceil(total_steps / steps_per_epoch)
    scheduler = steps.build_scheduler(optimizer, args, head_warmup_steps, total_steps - head_warmup_steps)
    head_warmup_loss = CrossEntropyMethod(ignore_index=task.ignore_index)

    # The module itself, not torch.compile's wrapper: the frozen policies copy it (and compile their copy), so that
    # refreshes and checkpoints see the plain parameter names.
    unwrapped = accelerator.unwrap_model(model, keep_torch_compile=False)
    if args.gradient_checkpointing:
        unwrapped.encoder.enable_gradient_checkpointing()
    # The frozen part of the model (the encoder, or its embeddings and first blocks) is the same in every policy:
    # the frozen copies hold only the rest and finish from what the training model's frozen part computed.
    shared = unwrapped.frozen_part
    compile_mode = args.torch_compile_mode if args.torch_compile else False
    policies = {name: FrozenPolicy(unwrapped, shared, compile_mode) if needed else None
                for name, needed in (("old_policy", method.needs_old_policy),
                                     ("reference_policy", method.needs_reference_policy))}
    old_policy, reference_policy = policies["old_policy"], policies["reference_policy"]
    refresh = method.refresh_schedule
    # L2-SP anchors the encoder as loaded, before a resume restores the checkpoint's weights: a resumed run pulls
    # towards the same weights as the uninterrupted one. None when off: no copy of the weights, no change to the step.
    l2sp_weight = config.objective.l2sp_weight
    l2sp = L2SPRegularizer(unwrapped.encoder, l2sp_weight) if l2sp_weight > 0 else None
    state = load_checkpoint(accelerator, checkpoint, scheduler, policies) if checkpoint else TrainState()

    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        config.save(output_dir)
        logger.info("data: %s (validation from %s)", task.sizes(), task.validation_source)
    # On resume TensorBoard drops what the killed run logged after the checkpoint, and MLflow and W&B continue the
    # run they started (their hyper-parameters are already stored: MLflow refuses to store them again changed).
    accelerator.init_trackers(tracker_project_name(args.tracker_project_name, args.output_dir),
                              config=None if checkpoint else tracker_config(config.to_dict(secrets=False)),
                              init_kwargs=tracker_init_kwargs(args.report_to, args.run_name,
                                                              resume_step=state.step if checkpoint else None,
                                                              run_ids=state.tracker_run_ids))
    state.tracker_run_ids.update(tracker_run_ids(accelerator.trackers))
    metrics_log = MetricsLog(output_dir / METRICS_LOG_NAME, enabled=accelerator.is_main_process,
                             keep_lines=state.log_lines if checkpoint else 0)
    window = MetricWindow(state, accelerator.device)
    preemption = PreemptionWatch()
    progress = tqdm(total=total_steps, initial=state.step, desc=f"{method.name} train",
                    disable=args.disable_tqdm or not accelerator.is_local_main_process)
    primary = task.primary_metric
    runtime_before = state.train_runtime + caching_seconds  # the encoder's pass over the training set is training
    start = window_start = time.perf_counter()
    window_samples = state.samples_seen

    def checkpoint_now() -> Path:
        window.snapshot(state, accelerator)
        state.train_runtime = runtime_before + time.perf_counter() - start
        state.log_lines = metrics_log.lines
        return save_checkpoint(accelerator, output_dir, state, scheduler, policies, config, args.save_total_limit)

    # --- loop ---
    try:
        while state.epoch < num_epochs:
            in_head_warmup = state.epoch < args.head_warmup_epochs
            model.train()
            if in_head_warmup or shared == "encoder":
                unwrapped.encoder.eval()  # frozen features, as a linear probe reads them (and as they are cached)
            epoch_start = state.batches_in_epoch == 0
            method_starts = epoch_start and args.head_warmup_epochs > 0 and state.epoch == args.head_warmup_epochs
            if method_starts and reference_policy is not None:  # the starting model includes the warmed-up head
                reference_policy.refresh(unwrapped)
            if old_policy is not None and epoch_start and not in_head_warmup and refresh.at_epoch_start(method_starts):
                old_policy.refresh(unwrapped)
            # The shuffle and each sample's augmentation are functions of the epoch: a resumed
            # epoch skips the batches it had done and sees the same rest.
            train_loader.set_epoch(state.epoch)
            if hasattr(train_loader.dataset, "set_epoch"):  # a task's dataset with random transforms
                train_loader.dataset.set_epoch(state.epoch)
            batches = skip_first_batches(train_loader, state.batches_in_epoch) if state.batches_in_epoch else train_loader
            data_wait = time.perf_counter()
            for batch in batches:
                window.data_seconds += time.perf_counter() - data_wait
                # Dropout draws by position (epoch, batch, process), not from wherever the generator got to.
                torch.manual_seed(derive_seed(args.seed, state.epoch, state.batches_in_epoch, accelerator.process_index))
                state.batches_in_epoch += 1
                with accelerator.accumulate(model):
                    if in_head_warmup:
                        loss, metrics = steps.head_warmup_step(accelerator, unwrapped, head_warmup_loss, batch)
                    else:
                        loss, metrics = steps.training_step(accelerator, model, method, old_policy, reference_policy,
                                                            batch, l2sp)
                    window.add(loss=loss, **metrics)
                    state.samples_seen += batch["labels"].shape[0] * accelerator.num_processes
                    if not accelerator.sync_gradients:  # a micro-batch: gradients accumulate, no step yet
                        data_wait = time.perf_counter()
                        continue
                    grad_norm = steps.clip_gradients(accelerator, model, args.max_grad_norm)
                    if not steps.finite_step(accelerator, grad_norm, state, args.skip_nonfinite_steps):
                        optimizer.zero_grad(set_to_none=True)
                        data_wait = time.perf_counter()
                        continue
                    optimizer.step()
                    if not accelerator.optimizer_step_was_skipped:  # fp16 overflow: no step, no schedule
                        scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                state.step += 1
                if old_policy is not None and refresh.after_step(state.step - head_warmup_steps):
                    old_policy.refresh(unwrapped)
                window.add_step(grad_norm=grad_norm)
                progress.update(1)
                if state.step % args.logging_steps == 0 or state.step in (total_steps, head_warmup_steps):
                    logged = window.pop_mean(accelerator)
                    state.loss_sum += logged["loss"] * window.last_steps
                    now = time.perf_counter()
                    logged.update(
                        learning_rate=scheduler.get_last_lr()[0],
                        head_learning_rate=scheduler.get_last_lr()[-1],
                        epoch=state.step / steps_per_epoch,
                        samples_per_second=(state.samples_seen - window_samples) / max(now - window_start, 1e-9),
                        data_wait_share=window.data_seconds / max(now - window_start, 1e-9),
                    )
                    window.data_seconds, window_start, window_samples = 0.0, now, state.samples_seen
                    metrics_log.write(state.step, logged)
                    accelerator.log(logged, step=state.step)
                    progress.set_postfix(_postfix(logged), refresh=False)
                if state.step >= total_steps:
                    break
                if args.checkpoint_every_steps and state.step % args.checkpoint_every_steps == 0:
                    checkpoint_now()
                if preemption.requested(accelerator):
                    raise TrainingPreempted(checkpoint_now(), preemption.signal_name)
                data_wait = time.perf_counter()
            state.epoch += 1
            state.batches_in_epoch = 0
            steps.share_buffers(accelerator, model)
            validation = task.evaluate(model, "validation", accelerator, not args.disable_tqdm)
            state.validation_metrics = result_metrics("validation", validation, scalars_only=True)
            metrics_log.write(state.step, {**state.validation_metrics, "epoch": state.epoch})
            accelerator.log(state.validation_metrics, step=state.step)
            if validation[primary] > state.best_score:
                state.best_score, state.best_epoch = validation[primary], state.epoch
                state.best_validation_metrics = dict(state.validation_metrics)
                steps.save_model(accelerator, model, output_dir / BEST_MODEL_DIR, config)
            logger.info("epoch %d: validation %s %.4f", state.epoch, primary, validation[primary])
            if args.checkpointing_steps == "epoch" and state.epoch < num_epochs:
                checkpoint_now()
            if preemption.requested(accelerator):
                raise TrainingPreempted(checkpoint_now(), preemption.signal_name)
    except TrainingPreempted:
        finish_trackers(accelerator)
        raise
    finally:
        preemption.close()
        progress.close()
    train_runtime = runtime_before + time.perf_counter() - start
    if args.load_best_model_at_end and state.best_epoch > 0:
        # The weights validation selected replace the last epoch's: what is saved, tested and evaluated after
        # training, as HF Trainer does. Every process reads the folder the main process wrote.
        accelerator.wait_for_everyone()
        unwrapped.load_state_dict(EncoderWithHead.from_pretrained(output_dir / BEST_MODEL_DIR).state_dict())
        state.validation_metrics = dict(state.best_validation_metrics)

    metrics = {
        "epoch": state.step / steps_per_epoch,
        "train_loss": state.loss_sum / max(state.step, 1),
        "train_runtime": train_runtime,
        "train_samples": train_samples,
        "train_samples_per_second": state.samples_seen / train_runtime,
        "train_steps_per_second": state.step / train_runtime,
        "total_steps": state.step,
        "method": method.name,
        # The epoch whose weights training returns: the last one, or the best on validation.
        "model_epoch": state.best_epoch if args.load_best_model_at_end and state.best_epoch > 0 else state.epoch,
    }
    if args.skip_nonfinite_steps:
        metrics["nonfinite_steps_skipped"] = state.nonfinite_steps_skipped
    if config.data.skip_bad_images:
        metrics["skipped_bad_images"] = task.splits.skipped_bad_images
    return TrainOutput(unwrapped, model, task, accelerator, state, method, metrics, checkpoint)


def _postfix(logged: dict) -> dict:
    postfix = {"loss": f"{logged['loss']:.4f}"}
    if "reward" in logged:
        postfix["reward"] = f"{logged['reward']:.3f}"
        postfix["clip"] = f"{logged['clip_ratio/region_mean']:.3f}"
    postfix["samples/s"] = f"{logged['samples_per_second']:.0f}"
    return postfix


def _check_features_can_be_cached(config: RunConfig) -> None:
    """Cached features stand for the encoder's only if it never changes and reads the same inputs every epoch."""
    fixes = [] if config.model.freeze_backbone else ["pass --freeze_backbone"]
    augmentation_off = task_class(config.model.task).random_augmentation(config)
    if augmentation_off:
        fixes.append(augmentation_off)
    if fixes:
        raise ValueError(f"cache_frozen_features needs --freeze_backbone and no random augmentation: "
                         f"{', and '.join(fixes)}")


def _check_output_dir(output_dir: Path, overwrite: bool, resuming: bool) -> None:
    """A non-empty output_dir is refused unless overwriting or resuming is asked for."""
    existing = sorted(p.name for p in output_dir.iterdir()) if output_dir.is_dir() else []
    if existing and not (overwrite or resuming):
        raise FileExistsError(
            f"output_dir {output_dir} is not empty ({', '.join(existing[:4])}{' ...' if len(existing) > 4 else ''}); "
            "choose another --output_dir, pass --overwrite_output_dir, or --resume_from_checkpoint latest"
        )
