"""The pretraining loop: next-token cross-entropy, AdamW, warmup + decay, accumulation, precision, eval,
checkpoints, resume, failure handling, and logging. `train(config, run_dir)` is what the CLI calls.

Order of one step (step s counts from 0; after it, s + 1 updates are done):
    lr <- lr_at(s); torch RNG <- seed(seed, rank, s)          # a resumed run replays dropout exactly
    for each micro-batch m: forward under autocast, backward of loss / grad_accum (gradient sync on the last)
    clip the global gradient norm; AdamW step (through the grad scaler for float16)
    losses stay on the device; they are read back (one host sync) only at log, eval and checkpoint steps
"""

from __future__ import annotations

import contextlib
import copy
import functools
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gptkit.cpu_memory import keep_freed_memory
from gptkit.data.loader import TokenLoader, open_shards
from gptkit.devices import cpu_has_native_bf16
from gptkit.errors import ConfigError, GptkitError
from gptkit.files import atomic_write_bytes
from gptkit.model_info import train_flops_per_token
from gptkit.train import checkpoint as ckpt
from gptkit.train import distributed as D
from gptkit.train.budget import TimeBudget, paired_step_times, reference_step, steps_for_reference
from gptkit.train.config import RunConfig
from gptkit.train.data import TrainingData, resolve_data
from gptkit.train.evaluation import EvaluationMixin
from gptkit.train.init_from import apply_init_from, check_init_data, load_init_weights, read_init_source
from gptkit.train.metrics import MetricsLog, peak_flops, progress_line
from gptkit.train.optim import build_optimizer, clip_grad_norm, lr_at, set_lr
from gptkit.train.run_dir import LOCK_FILE, RunDirMixin
from gptkit.train.signals import StopSignals
from gptkit.train.task import Batch, PretrainTask, Task

CONFIG_FILE = "config.toml"
__all__ = ["CONFIG_FILE", "LOCK_FILE", "TrainResult", "Trainer", "TrainingError", "train"]
Pending = tuple[int, torch.Tensor, "torch.Tensor | None"]  # (step, loss, grad norm) not yet read back


class TrainingError(GptkitError):
    """The run cannot go on (a non-finite loss, ...); the message says where it stopped and what is saved."""


@dataclass
class TrainResult:
    run_dir: Path
    step: int  # updates done
    train_loss: float | None  # of the last logged step
    val_loss: float | None  # of the last evaluation
    best_val_loss: float | None
    checkpoint: Path | None  # the newest checkpoint
    interrupted: str | None = None  # "SIGINT" / "SIGTERM" when a signal stopped the run early


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def resolve_dtype(setting: str, device: torch.device) -> torch.dtype:
    """The autocast dtype of train.dtype `setting` on `device`. auto: bfloat16 on a CUDA GPU that supports it
    and on a CPU that multiplies bfloat16 in hardware (gptkit.devices.cpu_has_native_bf16: without those
    kernels PyTorch emulates it, about 30x slower), float32 elsewhere (an AVX2-only CPU, MPS)."""
    if setting == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        if device.type == "cpu" and cpu_has_native_bf16():
            return torch.bfloat16
        return torch.float32
    return DTYPES[setting]


def step_seed(seed: int, rank: int, step: int) -> int:
    """The torch seed of one step on one rank: dropout masks depend on (seed, rank, step) only."""
    return int(np.random.SeedSequence([seed, rank, step]).generate_state(1, dtype=np.uint64)[0] >> 1)


def seed_generators(seed: int, device: torch.device) -> None:
    """Seed the generators a step draws from: the CPU's and, on CUDA, this process's device's. (torch.manual_seed
    also queues a seed for every other backend, formatting a stack trace each time: 0.5 ms a step on a CPU.)"""
    torch.default_generator.manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.manual_seed(seed)


class Trainer(EvaluationMixin, RunDirMixin):
    """One training run. `model` may be given (any module with forward(idx, targets) -> (logits, loss));
    only a gptkit GPT is checkpointed and sampled from.

    `task` (gptkit.train.task.Task) replaces pretraining: it supplies the model, the batches and the loss,
    and `config` then needs only `.train` (a TrainConfig), `.to_toml()` and `.to_dict()`.
    """

    def __init__(
        self,
        config: RunConfig,
        run_dir: str | os.PathLike,
        *,
        resume: bool = False,
        resume_from: str | os.PathLike | None = None,
        model: nn.Module | None = None,
        data: TrainingData | None = None,
        task: Task | None = None,
        quiet: bool = False,
    ) -> None:
        # The RUN_DIR lock, held from here until run() ends; a setup that fails releases it and removes a
        # RUN_DIR this call created, so a refused command leaves no trace.
        self._held = contextlib.ExitStack()
        self._created_run_dir = False
        try:
            self._setup(config, run_dir, resume, resume_from, model, data, task, quiet)
        except BaseException:
            self.close(abandon=True)
            raise

    def _setup(
        self,
        config: RunConfig,
        run_dir: str | os.PathLike,
        resume: bool,
        resume_from: str | os.PathLike | None,
        model: nn.Module | None,
        data: TrainingData | None,
        task: Task | None,
        quiet: bool,
    ) -> None:
        self.cfg = config
        self.tc = tc = config.train
        self.run_dir = Path(run_dir)
        self.quiet = quiet
        self.dist = D.init_distributed(tc.device)
        self.device = self.dist.device
        self.dtype = resolve_dtype(tc.dtype, self.device)
        if tc.cpu_threads:
            torch.set_num_threads(tc.cpu_threads)
        if self.device.type == "cpu":
            keep_freed_memory()  # no fresh pages for each step's tensors (gptkit.cpu_memory)
        if self.device.type == "cuda":
            torch.set_float32_matmul_precision("high")  # TF32 tensor cores for any float32 matmul
        if self.dtype == torch.float16 and tc.parallel == "fsdp" and self.dist.distributed:
            raise ConfigError("train.dtype: float16 with FSDP is not supported; use bfloat16")
        resume = resume or resume_from is not None
        # --init-from: the checkpoint's model and tokenizer, checked before anything is written.
        from_checkpoint = tc.init_from and not resume and task is None
        self.init_source = read_init_source(tc.init_from) if from_checkpoint else None
        if self.init_source is not None:
            apply_init_from(config, self.init_source)
        self.resumed_from, state = self._prepare_run_dir(resume, resume_from, task)

        self.data: TrainingData | None = None
        if task is None:
            self.data = data or resolve_data(
                config.data, self.run_dir, is_main=self.dist.is_main, barrier=lambda: D.barrier(self.dist)
            )
            if self.init_source is not None:
                check_init_data(self.init_source, self.data.fingerprint, str(self.data.data_dir))
            self.model_config = config.model_config(vocab_size=self.data.vocab_size)
            if self.model_config.vocab_size > self.data.vocab_size and model is None:
                self.log(f"note: model.vocab_size {self.model_config.vocab_size} > the data's {self.data.vocab_size}")
            # Record the resolved model in the saved settings, so `--resume` rebuilds the same one.
            resolved = {k: v for k, v in self.model_config.to_dict().items() if v is not None}
            self.cfg.model = {"preset": config.model.get("preset", "small"), **resolved}
            self.loader = self._open_loader()
            task = PretrainTask(self.loader, self.model_config, self.data.tokenizer, chunked_loss=tc.chunked_loss)
        self.task = task
        self.model_config = task.model_config

        self.is_gpt = model is None
        self._sample_ids = self._sample_prompt_ids() if isinstance(task, PretrainTask) else None
        self.raw_model, self.model = self._build_model(model, state)
        self.optimizer = build_optimizer(self.raw_model, tc, self.device.type)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)

        self.step = 0
        self._last_lr = lr_at(0, tc)
        if tc.time_budget_ref_steps and self.resumed_from is None:
            self._set_reference_steps()
        # Its prior_s is set by a resume. Under torchrun the ranks agree on one reading per step (the latest
        # rank's), so every rank follows the same schedule and stops after the same step.
        agree = functools.partial(D.max_over_ranks, info=self.dist) if self.dist.distributed else None
        self.budget = TimeBudget(tc.time_budget_s, tc.time_budget_clock, agree=agree)
        self.best_val_loss: float | None = None
        self.last_val_loss: float | None = None
        self.last_train_loss: float | None = None
        self.last_checkpoint: Path | None = None
        if state is not None:
            self._restore(state)

        self.flops_per_token = train_flops_per_token(self.model_config)
        self.peak = peak_flops(self.device, self.dtype)
        self.tokens_per_step = task.tokens_per_step
        self.metrics = MetricsLog(self.run_dir, tensorboard=tc.tensorboard) if self.dist.is_main else None
        self._val_batches = task.val_batches(tc.eval_steps)
        self.last_eval: dict[str, float] = {}  # metrics of the last evaluation (val_loss and the task's own)
        self._val_chars_per_token = self._chars_per_val_token()
        # Written only now that every check has passed and the run really starts (a refused --resume must
        # not change the settings that the next --resume reads).
        if self.dist.is_main:
            atomic_write_bytes(self.run_dir / CONFIG_FILE, self.cfg.to_toml().encode("utf-8"))

    def _set_reference_steps(self) -> None:
        """train.time_budget_ref_steps (a new run only): time the reference step and this run's own step in
        turn, and set train.max_steps to the own steps that take the reference steps' time (capped by the
        max_steps set), saved in config.toml, which a resume reads. The schedule then runs over those steps."""
        tc = self.tc
        if tc.time_budget_s:
            raise ConfigError(
                "train.time_budget_s and train.time_budget_ref_steps: set one of them, not both (seconds, "
                f"{tc.time_budget_s:g}, or reference steps, {tc.time_budget_ref_steps})"
            )
        if self.device.type != "cpu":
            raise ConfigError("train.time_budget_ref_steps: CPU runs only (its reference workload is a CPU step)")
        if tc.time_budget_clock != "wall":
            raise ConfigError('train.time_budget_ref_steps: needs train.time_budget_clock = "wall"')
        if self.dist.distributed:
            raise ConfigError("train.time_budget_ref_steps: not supported under torchrun; set train.max_steps")
        timing = paired_step_times(self._own_step(), reference_step())
        steps = steps_for_reference(tc.time_budget_ref_steps, timing.ratio)
        capped = f" (capped by train.max_steps {tc.max_steps:,})" if steps > tc.max_steps else ""
        tc.max_steps = min(tc.max_steps, steps)
        self.log(
            f"step budget: {tc.time_budget_ref_steps:,} reference steps (nanoGPT's CPU model, float32) x "
            f"{1000 * timing.ref_s:.1f} ms / {1000 * timing.own_s:.1f} ms a step of this run, timed in turn "
            f"(ratio {timing.ratio:.3f}, {torch.get_num_threads()} thread(s)) = {steps:,} steps{capped}, "
            f"about {tc.max_steps * timing.own_s:.0f} s here"
        )

    def _own_step(self) -> Callable[[], None]:
        """One update of this run's training step (its model, optimizer, precision, batch shape, clipping)
        on copies of the model and optimizer, so the run itself starts untouched."""
        model = copy.deepcopy(self.raw_model)
        optimizer = build_optimizer(model, self.tc, self.device.type)
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.dtype == torch.float16)

        def step() -> None:
            seed_generators(step_seed(self.tc.seed, self.dist.rank, 0), self.device)
            micro = [self.task.batch(0, m) for m in range(self.tc.grad_accum)]
            self._update(model, optimizer, scaler, micro)

        return step

    def close(self, abandon: bool = False) -> None:
        """Release the RUN_DIR lock (run() does at its end). `abandon`: the setup failed; remove RUN_DIR if this
        Trainer created it (and held its lock, so no other run is in it)."""
        held = bool(self._held._exit_callbacks)
        self._held.close()
        if abandon and held and self._created_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

    # ---- setup ----------------------------------------------------------------------------------

    def _open_loader(self) -> TokenLoader:
        """Open (and validate, shared out over ranks) the shards; a bad one raises ShardError naming it."""
        tc, data = self.tc, self.data
        shards = [
            open_shards(
                paths,
                tokenizer_fingerprint=data.fingerprint,
                vocab_size=data.vocab_size,
                rank=self.dist.rank,
                world_size=self.dist.world_size,
            )
            for paths in (data.train_paths, data.val_paths)
        ]
        if not shards[1]:
            self.log(f"note: {data.data_dir} has no val_*.bin shards: no evaluation")
        return TokenLoader(
            shards[0],
            shards[1],
            block_size=self.model_config.block_size,
            batch_size=tc.batch_size,
            grad_accum=tc.grad_accum,
            rank=self.dist.rank,
            world_size=self.dist.world_size,
            seed=tc.seed,
            sampling=self.cfg.data.sampling,
        )

    def _compile(self, model: nn.Module) -> nn.Module:
        if not self.tc.compile:
            return model
        return torch.compile(model, mode=None if self.tc.compile_mode == "default" else self.tc.compile_mode)

    def _build_model(self, model: nn.Module | None, state: ckpt.TrainingState | None) -> tuple[nn.Module, nn.Module]:
        """(the module, the module to call in training): a new or restored GPT (or the given model) moved to
        the device, compiled and wrapped for DDP / FSDP2 as the settings say."""
        tc = self.tc
        torch.manual_seed(tc.seed)  # the same initial weights on every rank
        if model is None:
            model = self.task.build_model()
            if state is not None:
                self.task.restore_model(model, self.resumed_from, state.model_state)
            elif self.init_source is not None:
                load_init_weights(model, self.init_source.path)
        raw = model
        half = self.dtype if self.dtype != torch.float32 else None
        if self.dist.distributed and tc.parallel == "fsdp":
            # Shard first (in place: `raw` becomes the sharded module), then compile around it.
            model = D.wrap_model(model, self.dist, tc.parallel, half)
            return raw, self._compile(model)
        model.to(self.device)
        model = self._compile(model)
        return raw, D.wrap_model(model, self.dist, tc.parallel, half)

    def log(self, message: str) -> None:
        if self.dist.is_main and not self.quiet:
            print(message, flush=True)

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def _to_device(self, t: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":
            return t.pin_memory().to(self.device, non_blocking=True)
        return t

    def _batch_to_device(self, batch: Batch) -> Batch:
        return {k: self._to_device(v) for k, v in batch.items()}

    # ---- one step -------------------------------------------------------------------------------
    def train_step(self, step: int, time_fraction: float | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """One optimizer update; returns (mean loss of the step on this rank, grad norm), both on the device.
        time_fraction: the share of train.time_budget_s used so far (the schedule follows it), if budgeted."""
        tc = self.tc
        lr = self._last_lr = lr_at(step, tc, time_fraction)
        set_lr(self.optimizer, lr)
        seed_generators(step_seed(tc.seed, self.dist.rank, step), self.device)
        micro = [self.task.batch(step, m) for m in range(tc.grad_accum)]
        result = self._update(self.model, self.optimizer, self.scaler, micro)
        self.task.advance(step + 1)
        return result

    def _update(
        self, model: nn.Module, optimizer: Any, scaler: torch.amp.GradScaler, micro: list[Batch]
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Forward and backward of the micro-batches, clipping and the optimizer step of `model`."""
        tc = self.tc
        n = len(micro)
        loss_sum = torch.zeros((), device=self.device)
        nxt = self._batch_to_device(micro[0])
        for m in range(n):
            batch = nxt
            with D.gradient_sync(model, sync=m == n - 1):
                with self.autocast():
                    loss = self.task.loss(model, batch)
                if m + 1 < n:  # start the next copy while the GPU computes
                    nxt = self._batch_to_device(micro[m + 1])
                scaler.scale(loss / n).backward()
            loss_sum += loss.detach()
        norm = None
        if tc.grad_clip > 0:
            scaler.unscale_(optimizer)
            norm = clip_grad_norm(model.parameters(), tc.grad_clip)
        scaler.step(optimizer)
        scaler.update()
        optimizer.zero_grad(set_to_none=True)
        return loss_sum / n, norm

    # ---- the loop -------------------------------------------------------------------------------
    def run(self) -> TrainResult:
        """Train to train.max_steps (or until a signal), then release the RUN_DIR lock."""
        try:
            return self._run_loop()
        finally:
            self.close()

    def _run_loop(self) -> TrainResult:
        tc = self.tc
        max_steps = tc.max_steps
        n_log = tc.log_interval
        # Per-step (loss, grad norm) of the steps since the last read-back, kept on the device.
        pending: list[Pending] = []
        interrupted = None
        self.model.train()
        n_params = sum(p.numel() for p in self.raw_model.parameters())
        self.log(
            f"training {self.model_config.n_layer} layers x {self.model_config.n_embd} wide ({n_params:,} parameters) "
            f"on {self.device} in {str(self.dtype).removeprefix('torch.')}, {self.dist.world_size} process(es), "
            f"{self.tokens_per_step:,} tokens/step, steps {self.step} -> {max_steps}"
        )
        self._t0 = time.perf_counter()
        budget = self.budget
        budget.start()
        if budget:
            self.log(f"time budget: {budget.seconds:g} s ({budget.clock} clock); the schedule runs over it")
        if self.step == 0 and self.resumed_from is None and self._val_batches and tc.eval_interval:
            self._eval_and_record()  # the starting point (eval_interval 0: only the end is evaluated)
        t_last = time.perf_counter()
        steps_timed = 0
        ema_step_s: float | None = None
        with StopSignals() as signals:
            # The budget is checked once per step, where `done` is decided, so the last step always evaluates
            # and saves; a budget spent by the initial evaluation still gets that one step. A resumed run
            # whose budget was spent before trains no more.
            budget.sync()
            spent = budget.spent()
            while self.step < max_steps and not spent:
                budget.sync()
                loss, norm = self.train_step(self.step, budget.fraction())
                self.step += 1
                pending.append((self.step, loss, norm))
                steps_timed += 1
                budget.sync()
                done = self.step == max_steps or budget.spent()
                do_eval = self._val_batches and (done or (tc.eval_interval and self.step % tc.eval_interval == 0))
                do_ckpt = done or (tc.checkpoint_interval and self.step % tc.checkpoint_interval == 0)
                check_stop = not self.dist.distributed or self.step % n_log == 0 or done
                stop = D.any_rank(signals.received is not None, self.dist) if check_stop else False
                if self.step % n_log == 0 or do_eval or do_ckpt or done or stop:
                    losses = self._read_back(pending)  # syncs with the device
                    elapsed = time.perf_counter() - t_last
                    step_s = elapsed / steps_timed
                    ema_step_s = step_s if ema_step_s is None else 0.7 * ema_step_s + 0.3 * step_s
                    record = self._train_record(losses[-1], step_s)
                    val = None
                    if do_eval:
                        val = self._eval_and_record(record)
                    elif self.metrics:
                        self.metrics.write(record)
                    if self.step % n_log == 0 or done:
                        self.log(progress_line(record, max_steps, ema_step_s * (max_steps - self.step), budget))
                    if do_ckpt or stop:
                        path = self.save(val if do_eval else None)
                        if path is not None:
                            self.log(f"saved checkpoint {path}")
                    pending.clear()
                    steps_timed = 0
                    t_last = time.perf_counter()
                if stop:
                    interrupted = signals.received or "signal on another rank"
                    self.log(
                        f"stopped by {interrupted} after step {self.step}; resume with: "
                        + self.task.resume_hint.format(run_dir=self.run_dir)
                    )
                    break
                if done:
                    break
        if self.metrics:
            self.metrics.close()
        return TrainResult(
            run_dir=self.run_dir,
            step=self.step,
            train_loss=self.last_train_loss,
            val_loss=self.last_val_loss,
            best_val_loss=self.best_val_loss,
            checkpoint=self.last_checkpoint,
            interrupted=interrupted,
        )

    def _read_back(self, pending: list[Pending]) -> list[tuple[int, float, float | None]]:
        """Bring the pending per-step losses to the host (averaged over ranks); stop at a non-finite one."""
        losses = torch.stack([loss for _, loss, _ in pending]).float()
        losses = (D.all_reduce_sum(losses, self.dist) / self.dist.world_size).tolist()
        norms: list[float | None] = [None] * len(pending)
        if self.tc.grad_clip > 0:  # the norm is computed while clipping (global, so the same on every rank)
            norms = torch.stack([norm for _, _, norm in pending]).float().tolist()
        out = []
        for (step, _, _), loss, norm in zip(pending, losses, norms, strict=True):
            if not math.isfinite(loss):
                last = self.last_checkpoint
                where = (
                    f"the last good checkpoint is {last} (step {ckpt_step(last)}); resume from it with "
                    f"`{self.task.resume_hint.format(run_dir=self.run_dir)}`, perhaps with a lower train.lr"
                    if last is not None
                    else "no checkpoint had been saved yet"
                )
                if self.metrics:
                    self.metrics.close()
                raise TrainingError(f"the training loss became {loss} at step {step}; stopped there: {where}")
            out.append((step, loss, norm))
        self.last_train_loss = out[-1][1]
        return out

    def _train_record(self, last: tuple[int, float, float | None], step_s: float) -> dict[str, Any]:
        step, loss, norm = last
        tokens_per_s = self.tokens_per_step / step_s if step_s > 0 else 0.0
        mfu = None
        if self.peak is not None:
            mfu = tokens_per_s * self.flops_per_token / (self.peak * self.dist.world_size)
        return {
            "step": step,
            "train_loss": loss,
            "lr": self._last_lr,
            "grad_norm": norm,
            "tokens_per_s": round(tokens_per_s, 1),
            "mfu": None if mfu is None else round(mfu, 4),
            "tokens": step * self.tokens_per_step,
            "elapsed_s": round(time.perf_counter() - self._t0, 3),
        }


def ckpt_step(path: Path | None) -> int | None:
    if path is None:
        return None
    return int(path.name.removeprefix("step_"))


def train(
    config: RunConfig,
    run_dir: str | os.PathLike,
    *,
    resume: bool = False,
    resume_from: str | os.PathLike | None = None,
    task: Task | None = None,
    quiet: bool = False,
) -> TrainResult:
    """Train per `config` into `run_dir`, or continue its newest checkpoint with `resume` (or the checkpoint
    `resume_from`, one of run_dir's); gptkit.train.resume says which settings a resumed run may change.
    `task` replaces pretraining (see Trainer). The process group is shut down however the run ends."""
    finished = False
    try:
        result = Trainer(config, run_dir, resume=resume, resume_from=resume_from, task=task, quiet=quiet).run()
        finished = True
        return result
    finally:
        D.shutdown(wait_for_peers=finished)
