"""One training loop for every method and task: setup, loop, results.

The method (``ce`` or ``grpo-rm``) only supplies the loss; GRPO-RM additionally gets
logits from the frozen old policy, refreshed at each epoch start or every N steps. All
that a resume needs lives in ``TrainState`` (and the checkpointed tensors), not in locals.
"""

from __future__ import annotations

import logging
import math
import shutil
import time
from pathlib import Path
from functools import partial
from typing import Callable, Optional

import torch
from accelerate import Accelerator
from accelerate import skip_first_batches
from accelerate.utils import DataLoaderConfiguration, ProjectConfiguration, TorchDynamoPlugin, set_seed
from torch.optim.lr_scheduler import LambdaLR
from tqdm.auto import tqdm
from transformers import get_scheduler

from ..config import RunConfig, TrainingArguments
from ..evaluation import result_metrics
from ..features import cached_training_loader
from ..files import (
    ALL_RESULTS_NAME,
    BEST_MODEL_DIR,
    EVAL_RESULTS_NAME,
    METRICS_LOG_NAME,
    PREDICTIONS_DIR,
    REPRESENTATION_RESULTS_NAME,
    TENSORBOARD_DIR,
    TRAIN_RESULTS_NAME,
    write_json_atomic,
)
from ..hub import hub_model_id, push_run
from ..methods import CrossEntropyMethod, FrozenPolicy, Method, build_method
from ..model_card import write_model_cards
from ..models import EncoderWithHead
from ..reporting import MetricsLog, tracker_config
from ..representation import evaluate_representation, out_of_distribution_data
from ..runtime import keep_freed_cpu_memory, make_accelerator
from ..seeding import derive_seed
from ..tasks import build_task, task_class
from ..trackers import tracker_init_kwargs, tracker_project_name, trackers_to_start
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


def train(config: RunConfig, method: Optional[Method] = None) -> dict:
    """Train, evaluate and save one run; returns what ``all_results.json`` holds.

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
    set_seed(args.seed)
    if accelerator.device.type == "cpu":
        keep_freed_cpu_memory()  # the old policy's forward would page-fault its activations in again each step

    task = build_task(config)
    model = task.build_model()
    method = method or build_method(config.objective, ignore_index=task.ignore_index)
    processor = model.processor
    train_loader = task.train_loader(processor)
    train_samples = len(train_loader.dataset)

    _freeze_unused_parameters(model, task.dummy_inputs(processor))
    optimizer = _build_optimizer(model, args)
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
    scheduler = _build_scheduler(optimizer, args, head_warmup_steps, total_steps - head_warmup_steps)
    head_warmup_loss = CrossEntropyMethod(ignore_index=task.ignore_index)

    unwrapped = accelerator.unwrap_model(model)
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
    refresh_every = config.objective.refresh_every_steps
    state = load_checkpoint(accelerator, checkpoint, scheduler, policies) if checkpoint else TrainState()

    if accelerator.is_main_process:
        output_dir.mkdir(parents=True, exist_ok=True)
        config.save(output_dir)
        logger.info("data: %s (validation from %s)", task.sizes(), task.validation_source)
    # On resume TensorBoard drops what the killed run logged after the checkpoint.
    accelerator.init_trackers(tracker_project_name(args.tracker_project_name, args.output_dir),
                              config=tracker_config(config.to_dict(secrets=False)),
                              init_kwargs=tracker_init_kwargs(args.report_to, args.run_name,
                                                              resume_step=state.step if checkpoint else None))
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
            if old_policy is not None and epoch_start and not in_head_warmup and (refresh_every is None or method_starts):
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
                        loss, metrics = _head_warmup_step(accelerator, unwrapped, head_warmup_loss, batch)
                    else:
                        loss, metrics = _training_step(accelerator, model, method, old_policy, reference_policy, batch)
                    window.add(loss=loss, **metrics)
                    state.samples_seen += batch["labels"].shape[0] * accelerator.num_processes
                    if not accelerator.sync_gradients:  # a micro-batch: gradients accumulate, no step yet
                        data_wait = time.perf_counter()
                        continue
                    grad_norm = _clip_gradients(accelerator, model, args.max_grad_norm)
                    if not _finite_step(accelerator, grad_norm, state, args.skip_nonfinite_steps):
                        optimizer.zero_grad(set_to_none=True)
                        data_wait = time.perf_counter()
                        continue
                    optimizer.step()
                    if not accelerator.optimizer_step_was_skipped:  # fp16 overflow: no step, no schedule
                        scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                state.step += 1
                method_step = state.step - head_warmup_steps
                if old_policy is not None and refresh_every is not None and method_step > 0 \
                        and method_step % refresh_every == 0:
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
            _share_buffers(accelerator, model)
            validation = task.evaluate(model, "validation", accelerator, not args.disable_tqdm)
            state.validation_metrics = result_metrics("validation", validation, scalars_only=True)
            metrics_log.write(state.step, {**state.validation_metrics, "epoch": state.epoch})
            accelerator.log(state.validation_metrics, step=state.step)
            if validation[primary] > state.best_score:
                state.best_score, state.best_epoch = validation[primary], state.epoch
                _save(accelerator, model, output_dir / BEST_MODEL_DIR, config)
            logger.info("epoch %d: validation %s %.4f", state.epoch, primary, validation[primary])
            if args.checkpointing_steps == "epoch" and state.epoch < num_epochs:
                checkpoint_now()
            if preemption.requested(accelerator):
                raise TrainingPreempted(checkpoint_now(), preemption.signal_name)
    except TrainingPreempted:
        accelerator.end_training()
        raise
    finally:
        preemption.close()
        progress.close()
    train_runtime = runtime_before + time.perf_counter() - start

    # --- results ---
    _save(accelerator, model, output_dir, config)
    test = task.evaluate(model, "test", accelerator, not args.disable_tqdm, output_dir / PREDICTIONS_DIR)
    representation = _evaluate_representation(config)
    final_epoch = state.step / steps_per_epoch
    train_results = {
        "epoch": final_epoch,
        "train_loss": state.loss_sum / max(state.step, 1),
        "train_runtime": train_runtime,
        "train_samples": train_samples,
        "train_samples_per_second": state.samples_seen / train_runtime,
        "train_steps_per_second": state.step / train_runtime,
        "total_steps": state.step,
        "method": method.name,
    }
    if args.skip_nonfinite_steps:
        train_results["nonfinite_steps_skipped"] = state.nonfinite_steps_skipped
    if config.data.skip_bad_images:
        train_results["skipped_bad_images"] = task.splits.skipped_bad_images
    eval_results = {"epoch": final_epoch, "task": task.name, **result_metrics("eval", test)}
    all_results = {
        **train_results,
        **eval_results,
        **state.validation_metrics,
        f"best_validation_{primary}": state.best_score,
        "best_epoch": state.best_epoch,
        "validation_source": task.validation_source,
    }
    if checkpoint is not None:
        all_results["resumed_from_checkpoint"] = str(checkpoint)
    if representation:
        all_results["representation"] = {
            dataset: {"knn_accuracy": r["knn"]["knn_accuracy"], "linear_probe_accuracy": r["linear_probe"]["linear_probe_accuracy"]}
            for dataset, r in representation.items()
        }
    if accelerator.is_main_process:
        write_json_atomic(output_dir / TRAIN_RESULTS_NAME, train_results)
        write_json_atomic(output_dir / EVAL_RESULTS_NAME, eval_results)
        if representation:
            write_json_atomic(output_dir / REPRESENTATION_RESULTS_NAME, representation)
        write_json_atomic(output_dir / ALL_RESULTS_NAME, all_results)
        write_model_cards(output_dir, config, all_results, hub_model_id(args))
    accelerator.wait_for_everyone()
    accelerator.end_training()  # also ends the process group of a distributed run
    # After end_training: the trackers' files are complete, and no other process waits on this one.
    if args.push_to_hub and accelerator.is_main_process:
        push_run(config, all_results)
    return all_results


def _evaluate_representation(config: RunConfig) -> dict:
    """Frozen-feature kNN and softmax regression of the trained encoder on ``eval_datasets``.

    Every process takes part: each extracts its share of the features in this run's process group
    (no process waits idle in a collective while another computes), and each then fits the same
    classifiers on the same gathered features, to the same results.
    """
    if not config.evaluation.eval_datasets:
        return {}
    datasets = out_of_distribution_data(config.data, config.evaluation.eval_datasets)
    return evaluate_representation(config.training.output_dir, datasets, config.evaluation, config.model.image_size,
                                   config.model.max_seq_length, config.training.per_device_eval_batch_size,
                                   show_progress=not config.training.disable_tqdm)


def _training_step(accelerator, model, method: Method, old_policy, reference_policy, batch: dict):
    inputs = batch["inputs"]
    with accelerator.autocast():
        logits, frozen_output = model(**inputs, return_frozen_output=True)
        old_logits = old_policy(**inputs, frozen_output=frozen_output) if old_policy is not None else None
        ref_logits = reference_policy(**inputs, frozen_output=frozen_output) if reference_policy is not None else None
    output = method(logits, batch["labels"], old_logits=old_logits, ref_logits=ref_logits)
    accelerator.backward(output.loss)
    return output.loss.detach(), output.metrics


def _head_warmup_step(accelerator, model: EncoderWithHead, loss_fn: CrossEntropyMethod, batch: dict):
    """Cross-entropy on the head alone. The encoder runs without a graph, so the step bypasses the
    distributed wrapper (which would wait for encoder gradients that never come) and averages the head's
    gradients over processes itself, once per optimizer step."""
    with accelerator.autocast():
        with torch.no_grad():
            encoded = model.encode(**batch["inputs"])
        output = loss_fn(model.head(encoded), batch["labels"])
    accelerator.backward(output.loss)
    if accelerator.sync_gradients and accelerator.num_processes > 1:
        for param in model.head.parameters():
            if param.grad is not None:
                param.grad = accelerator.reduce(param.grad, reduction="mean")
    return output.loss.detach(), output.metrics


def _share_buffers(accelerator: Accelerator, model) -> None:
    """Give every process rank 0's buffers (BatchNorm running statistics).

    DDP copies them from rank 0 at each training forward, but each rank's last batch
    moves its own copy again; evaluation and saving must all see the same model.
    """
    if accelerator.num_processes > 1:
        for buffer in accelerator.unwrap_model(model).buffers():
            torch.distributed.broadcast(buffer, src=0)


def _clip_gradients(accelerator: Accelerator, model, max_grad_norm: float) -> torch.Tensor:
    parameters = [p for p in model.parameters() if p.requires_grad]
    if max_grad_norm > 0:
        return accelerator.clip_grad_norm_(parameters, max_grad_norm).detach()
    accelerator.unscale_gradients()  # report the norm of the true gradients under fp16 loss scaling
    grads = [p.grad.detach().norm() for p in parameters if p.grad is not None]
    return torch.stack(grads).norm() if grads else torch.zeros((), device=accelerator.device)


def _postfix(logged: dict) -> dict:
    postfix = {"loss": f"{logged['loss']:.4f}"}
    if "reward" in logged:
        postfix["reward"] = f"{logged['reward']:.3f}"
        postfix["clip"] = f"{logged['clip_ratio/region_mean']:.3f}"
    postfix["samples/s"] = f"{logged['samples_per_second']:.0f}"
    return postfix


def _save(accelerator: Accelerator, model, directory: Path, config: RunConfig) -> None:
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        accelerator.unwrap_model(model).save_pretrained(directory, run_config=config)
    accelerator.wait_for_everyone()


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


def _finite_step(accelerator: Accelerator, grad_norm: torch.Tensor, state: TrainState, skip: bool) -> bool:
    """Whether to take this optimizer step. The gradient norm is that of the all-reduced gradients, so every
    process decides alike. fp16 overflows are the gradient scaler's to handle."""
    if accelerator.scaler is not None or bool(torch.isfinite(grad_norm)):
        return True
    if not skip:
        raise FloatingPointError(
            f"the loss or gradients are not finite at step {state.step + 1}; the last checkpoint (if any) is kept. "
            "Lower --learning_rate, or pass --skip_nonfinite_steps to skip such steps"
        )
    state.nonfinite_steps_skipped += 1
    logger.warning("non-finite gradients at step %d: step skipped (%d so far)", state.step + 1,
                   state.nonfinite_steps_skipped)
    return False


def _freeze_unused_parameters(model: EncoderWithHead, dummy_inputs: dict) -> None:
    """Freeze trainable parameters that the forward pass never reaches (e.g. DINOv2's mask token),
    which distributed data parallel would otherwise reject."""
    model.eval()  # no side effects on BatchNorm statistics or random draws
    model(**dummy_inputs).sum().backward()
    model.train()
    unused = [name for name, p in model.named_parameters() if p.requires_grad and p.grad is None]
    for name, param in model.named_parameters():
        if name in unused:
            param.requires_grad_(False)
        param.grad = None
    if unused:
        logger.info("parameters outside the forward pass, kept frozen: %s", unused)


def _build_scheduler(optimizer: torch.optim.Optimizer, args: TrainingArguments, head_warmup_steps: int,
                     method_steps: int) -> LambdaLR:
    """transformers' schedule over the method's steps; before them, during a head warm-up, the head's peak rate
    and none for the encoder."""
    schedule = get_scheduler(args.lr_scheduler_type, optimizer, math.ceil(args.warmup_ratio * method_steps),
                             method_steps)
    if not head_warmup_steps:
        return schedule
    return LambdaLR(optimizer, [partial(_after_head_warmup, factor, head_warmup_steps, group["part"] == "head")
                                for factor, group in zip(schedule.lr_lambdas, optimizer.param_groups)])


def _after_head_warmup(factor: Callable[[int], float], head_warmup_steps: int, is_head: bool, step: int) -> float:
    if step < head_warmup_steps:
        return float(is_head)
    return factor(step - head_warmup_steps)


def _build_optimizer(model: EncoderWithHead, args: TrainingArguments) -> torch.optim.Optimizer:
    """AdamW with separate learning rates for backbone and head; no weight decay on biases, norms and tokens."""
    head_lr = args.head_learning_rate if args.head_learning_rate is not None else args.learning_rate
    groups = []
    for part, module, lr in (("encoder", model.encoder, args.learning_rate), ("head", model.head, head_lr)):
        decay, no_decay = [], []
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue
            skip = param.ndim <= 1 or "token" in name or "position_embedding" in name
            (no_decay if skip else decay).append(param)
        groups += [
            {"params": decay, "lr": lr, "weight_decay": args.weight_decay, "part": part},
            {"params": no_decay, "lr": lr, "weight_decay": 0.0, "part": part},
        ]
    groups = [group for group in groups if group["params"]]
    if not groups:
        raise ValueError("no trainable parameters")
    return torch.optim.AdamW(groups)
