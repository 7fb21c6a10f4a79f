"""The Trainer's run directory: the RUN_DIR lock and the checks a new or resumed run must pass before anything
is written, restoring a resumed run's state, and saving checkpoints. A mixin of gptkit.train.trainer.Trainer."""

from __future__ import annotations

import os
from pathlib import Path

from gptkit.data.runner import output_lock
from gptkit.errors import GptkitError
from gptkit.train import checkpoint as ckpt
from gptkit.train import distributed as D
from gptkit.train.config import RunConfig
from gptkit.train.full_state import full_model_state, full_optimizer_state, load_full_optimizer_state
from gptkit.train.metrics import METRICS_FILE, truncate_metrics
from gptkit.train.optim import optimizer_list
from gptkit.train.resume import (
    check_global_batch,
    check_max_steps,
    check_resume_settings,
    checkpoint_run_config,
    choose_checkpoint,
    load_resume_state,
    resolve_run_paths,
)
from gptkit.train.task import Task

LOCK_FILE = "train.lock"  # in RUN_DIR: held (flock) by the process training it


class RunDirMixin:
    """_prepare_run_dir(), _restore() and save(); see Trainer for the attributes they read."""

    def _prepare_run_dir(
        self, resume: bool, resume_from: str | os.PathLike | None, task: Task | None
    ) -> tuple[Path | None, ckpt.TrainingState | None]:
        """Lock RUN_DIR (creating it for a new run), check that it holds what `resume` expects, and for a resume
        check the settings against the checkpoint and load it: (checkpoint path, its state), or (None, None).
        Nothing in RUN_DIR is written before every check has passed."""
        if self.dist.is_main:
            try:
                self.run_dir.mkdir(parents=True)
                self._created_run_dir = True
            except FileExistsError:
                pass
            self._held.enter_context(
                output_lock(self.run_dir, lock=self.run_dir / LOCK_FILE, what="`gptkit train`", error=GptkitError)
            )
        D.barrier(self.dist)
        has_checkpoint = ckpt.latest_checkpoint(self.run_dir) is not None
        if resume and not has_checkpoint:
            raise GptkitError(f"{self.run_dir}: no complete checkpoint to resume from (in {ckpt.CHECKPOINTS}/)")
        if not resume and has_checkpoint:
            raise GptkitError(
                f"{self.run_dir}: already holds a training run; pass --resume to continue it, or choose another --out"
            )
        if not resume and (self.run_dir / METRICS_FILE).exists():
            raise GptkitError(
                f"{self.run_dir}: holds {METRICS_FILE} of an earlier run that saved no checkpoint; "
                "delete the directory or choose another --out"
            )
        path, state = None, None
        if resume:
            path = choose_checkpoint(self.run_dir, resume_from)
            if task is None and isinstance(self.cfg, RunConfig):
                saved = checkpoint_run_config(path)
                if saved is not None:
                    check_resume_settings(saved, self.cfg, path)
            state = load_resume_state(self.run_dir, path, explicit=resume_from is not None)
            if task is None and isinstance(self.cfg, RunConfig):
                check_global_batch(self.cfg, self.dist.world_size, state, path)
            check_max_steps(self.cfg, int(state.trainer["step"]), path)
        if task is None and isinstance(self.cfg, RunConfig):
            resolve_run_paths(self.cfg)
        if self.dist.is_main:  # under the lock, so no live run's half-written checkpoint is removed
            ckpt.remove_incomplete(self.run_dir)
        D.barrier(self.dist)
        return path, state

    def _sharded(self) -> bool:
        """Whether the parameters are FSDP2 shards (torch.distributed.checkpoint then gathers and scatters the
        full state; otherwise gptkit.train.full_state, which does not import torch._dynamo)."""
        return bool(self.dist.distributed and self.tc.parallel == "fsdp")

    def _restore(self, state: ckpt.TrainingState) -> None:
        t = state.trainer
        optimizers = optimizer_list(self.optimizer)
        if self._sharded():
            from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

            options = StateDictOptions(full_state_dict=True)
            set_optimizer_state_dict(self.raw_model, optimizers, state.optimizer_state, options=options)
        else:
            source = str(self.resumed_from / ckpt.OPTIMIZER_FILE)
            load_full_optimizer_state(self.raw_model, optimizers, state.optimizer_state, source=source)
        self.task.load_state_dict(t["loader"], source=str(self.resumed_from / ckpt.STATE_FILE))
        if t.get("scaler"):
            self.scaler.load_state_dict(t["scaler"])
        self.step = int(t["step"])
        self.budget.prior_s = float(t.get("budget_used_s") or 0.0)
        self.best_val_loss = t.get("best_val_loss")
        self.last_val_loss = t.get("val_loss")
        self.last_checkpoint = self.resumed_from
        if self.dist.is_main:
            truncate_metrics(self.run_dir, self.step)
        self.log(f"resumed from {self.resumed_from} (step {self.step})")

    def save(self, val_loss: float | None) -> Path | None:
        if not self.is_gpt:
            return None
        optimizers = optimizer_list(self.optimizer)
        if self._sharded():
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                get_model_state_dict,
                get_optimizer_state_dict,
            )

            opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
            model_state = get_model_state_dict(self.raw_model, options=opts)  # collectives
            optim_state = get_optimizer_state_dict(self.raw_model, optimizers, options=opts)
        else:
            model_state = full_model_state(self.raw_model)
            optim_state = full_optimizer_state(self.raw_model, optimizers)
        path = None
        if self.dist.is_main:
            trainer = {
                "loader": self.task.state_dict(),
                "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
                "val_loss": val_loss,
                "best_val_loss": self.best_val_loss,
                "train_loss": self.last_train_loss,
                "rng": "reseeded at every step from (train.seed, rank, step)",
                "budget_used_s": self.budget.used(),
            }
            training = {
                "step": self.step,
                "tokens_seen": self.step * self.tokens_per_step,
                "val_loss": val_loss,
                "train_loss": self.last_train_loss,
                "config": self.cfg.to_dict(),
            }
            path = ckpt.save_checkpoint(
                self.run_dir,
                self.step,
                model_config=self.model_config,
                model_state=model_state,
                optimizer_state=optim_state,
                trainer=trainer,
                training_section=training,
                write_model=self.task.write_model,
            )
            ckpt.prune_checkpoints(self.run_dir, self.tc.keep_checkpoints)
        D.barrier(self.dist)
        self.last_checkpoint = path or self.run_dir / ckpt.CHECKPOINTS / ckpt.step_dir_name(self.step)
        return self.last_checkpoint
