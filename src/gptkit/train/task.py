"""What a training run optimises: the `Task` hook the Trainer calls, and pretraining as the default task.

The Trainer owns the loop (schedule, accumulation, precision, progress, metrics.jsonl, checkpoints, exact
resume); a task owns the rest, so fine-tuning (gptkit.train.finetune) and chat SFT reuse the loop:

    batch(step, micro) -> Batch     micro-batch `micro` of step `step`, a pure function of (seed, step) or
                                    restored exactly by load_state_dict
    val_batches(eval_steps)         the fixed validation batches (the same at every evaluation)
    loss(model, batch) -> scalar    the training objective of one micro-batch (mean over it), from ONE
                                    call of `model` (so DDP's forward hooks see every parameter use)
    eval_batch / finish_eval        sums over the val batches (added over batches and ranks), then the
                                    metrics, at least {"val_loss": ...}
    build_model / restore_model / write_model   the module trained, how a checkpoint restores and stores it
    state_dict / load_state_dict    the batch position, checked on resume

A Batch is a dict of CPU tensors that the Trainer moves to the device: "idx" (B, T) token ids plus whatever
the task reads, e.g. "targets" (B, T) next tokens (-100 ignored), "attention_mask" (B, T) 1 for real tokens,
"position_ids" (B, T), "loss_mask" (B, T) 1 where the LM loss counts, "labels" (B,).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from gptkit.checkpoint import load_state_checked, save_model_state
from gptkit.config import ModelConfig

Batch = dict[str, torch.Tensor]


class Task:
    """Base class: a task implements batch, val_batches, loss, build_model and the state methods."""

    model_config: ModelConfig  # of the GPT inside the trained module (checkpointed as config.json "model")
    tokenizer: Any = None  # saved with every checkpoint when not None
    tokens_per_step: int = 0  # training tokens per optimizer step over all ranks (for rates and "tokens")
    resume_hint: str = "gptkit train --out {run_dir} --resume"  # what the user runs to continue

    def batch(self, step: int, micro: int) -> Batch:
        raise NotImplementedError

    def val_batches(self, eval_steps: int) -> list[Batch]:
        return []

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        raise NotImplementedError

    def eval_batch(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        """Summable statistics of one val batch; the default is its mean loss (batches have equal size)."""
        return {"loss": self.loss(model, batch).float(), "batches": torch.ones((), device=batch["idx"].device)}

    def finish_eval(self, sums: dict[str, float]) -> dict[str, float]:
        """Metrics from the statistics summed over all val batches and ranks; must hold "val_loss"."""
        return {"val_loss": sums["loss"] / sums["batches"]}

    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def restore_model(self, model: nn.Module, checkpoint_dir: Path, model_state: dict[str, torch.Tensor]) -> None:
        """Load a checkpoint's weights (`model_state` is its model.safetensors) into `model`."""
        load_state_checked(model, model_state, source=str(checkpoint_dir / "model.safetensors"))

    def write_model(self, model_state: dict[str, torch.Tensor], directory: Path) -> None:
        """Write the model files of a checkpoint (config.json "model", model.safetensors, tokenizer) into
        `directory`; `model_state` is the full state dict of the trained module on the CPU."""
        save_model_state(self.model_config, model_state, directory)
        if self.tokenizer is not None:
            self.tokenizer.save(directory)

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any], source: str) -> None:
        raise NotImplementedError

    def advance(self, step: int) -> None:
        """Called after each update with the number of updates done (a position some tasks keep)."""


class PretrainTask(Task):
    """Next-token prediction on token shards: the batches of a TokenLoader, the GPT's cross-entropy."""

    def __init__(
        self, loader: Any, model_config: ModelConfig, tokenizer: Any, world_size: int = 1, chunked_loss: bool = False
    ) -> None:
        self.loader = loader  # gptkit.data.loader.TokenLoader
        self.model_config = model_config
        self.tokenizer = tokenizer
        self.chunked_loss = chunked_loss  # train.chunked_loss: the loss without a logits tensor (fused_loss)
        self.tokens_per_step = loader.global_batch * model_config.block_size

    def batch(self, step: int, micro: int) -> Batch:
        x, y = self.loader.get(step, micro)
        return {"idx": x, "targets": y}

    def val_batches(self, eval_steps: int) -> list[Batch]:
        return [{"idx": x, "targets": y} for x, y in self.loader.val_batches(eval_steps)]

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        return lm_loss(model, batch, chunked=self.chunked_loss)

    def build_model(self) -> nn.Module:
        from gptkit.model import GPT

        return GPT(self.model_config)

    def state_dict(self) -> dict[str, Any]:
        return self.loader.state_dict()

    def load_state_dict(self, state: dict[str, Any], source: str) -> None:
        self.loader.load_state_dict(state, source=source)

    def advance(self, step: int) -> None:
        self.loader.step = step


def lm_targets(batch: Batch) -> torch.Tensor:
    """batch["targets"] with the positions that "loss_mask" zeroes set to -100 (ignored by the loss)."""
    targets = batch["targets"]
    mask = batch.get("loss_mask")
    if mask is not None:
        targets = targets.masked_fill(mask == 0, -100)
    return targets


def lm_loss(model: nn.Module, batch: Batch, chunked: bool = False) -> torch.Tensor:
    """Mean next-token cross-entropy of a GPT on a batch, honouring its optional attention_mask,
    position_ids and loss_mask. chunked: through gptkit.fused_loss (no logits tensor; GPT return_logits=False)."""
    kwargs = {k: batch[k] for k in ("attention_mask", "position_ids") if k in batch}
    if chunked:
        kwargs["return_logits"] = False
    _, loss = model(batch["idx"], lm_targets(batch), **kwargs)
    return loss
