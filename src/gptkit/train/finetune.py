"""GPT-1 fine-tuning (Radford et al. 2018, sections 3.2-3.3): a linear head on the final state of the last
("extract") token, trained with L3 = L2 (task cross-entropy) + lm_weight x L1 (next-token loss on the same
inputs), through the pretraining Trainer (gptkit.train.task) for progress, metrics.jsonl, checkpoints and
exact resume.

    finetune_classify(config, out_dir, resume=False)   what `gptkit finetune classify` runs

The base checkpoint's tokenizer gains <|start|>, <|delim|> and <|extract|> (gptkit.tokenizer.extend) and its
embedding the rows for them (gptkit.vocab.grow_vocab, from the mean embedding unless token_init = "random");
the only other new parameters are the head's (`score`, n_embd x labels, no bias, as HF's
GPT2ForSequenceClassification). L1 counts every next token of a row (the transform tokens included, the
first token excluded, padding ignored), averaged over the batch's tokens; for similarity and multiple choice
every row of a record counts.

A fine-tuned checkpoint directory is a gptkit model directory (model.safetensors + config.json "model" +
tokenizer: `gptkit.load_model` reads its GPT) plus classifier.safetensors (score.weight) and config.json
"classifier" (task, labels, transform token ids, the vocabulary growth; see gptkit.train.finetune_model).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gptkit.checkpoint import load_state_checked
from gptkit.config import ModelConfig
from gptkit.errors import ConfigError
from gptkit.model import GPT
from gptkit.train.finetune_config import FinetuneConfig, FinetuneRunConfig, derive_schedule, load_finetune_config
from gptkit.train.finetune_data import (
    BUILTIN_SENTIMENT,
    TRANSFORM_TOKENS,
    FinetuneDataError,
    LabelledData,
    TransformTokens,
    build_rows,
    label_set,
    read_labelled,
)
from gptkit.train.finetune_model import (
    ClassifierModel,
    ClassifierSpec,
    collate,
    load_head,
    read_spec,
    write_classifier,
)
from gptkit.train.task import Batch, Task

__all__ = [
    "ClassifierModel",
    "ClassifierSpec",
    "ClassifierTask",
    "FinetuneRunConfig",
    "collate",
    "finetune_classify",
    "load_finetune_config",
    "load_head",
    "read_spec",
]


# ---- the task ---------------------------------------------------------------------------------
class ClassifierTask(Task):
    """Fine-tuning as a Trainer task: epochs of shuffled records, L2 + lm_weight x L1, accuracy on val.

    Step s takes records s x G ... s x G + G - 1 (G = batch x grad_accum x ranks) of the stream that lists
    every epoch's permutation (drawn from (seed, epoch)) in turn, so a batch is a function of (seed, step).
    Every val record is evaluated at each evaluation (train.eval_steps does not apply).
    """

    resume_hint = "gptkit finetune classify --out {run_dir} --resume"

    def __init__(
        self,
        cfg: FinetuneRunConfig,
        spec: ClassifierSpec,
        model_config: ModelConfig,
        tokenizer: Any,
        train_rows: list[list[list[int]]],
        train_labels: list[int],
        val_rows: list[list[list[int]]],
        val_labels: list[int],
        *,
        base_model: GPT | None,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        self.cfg = cfg
        self.spec = spec
        self.model_config = model_config
        self.tokenizer = tokenizer
        self.train_rows, self.train_labels = train_rows, train_labels
        self.val_rows, self.val_labels = val_rows, val_labels
        self.base_model = base_model  # the grown base GPT to start from (None when resuming)
        self.rank, self.world_size = rank, world_size
        tc = cfg.train
        self.global_batch = tc.batch_size * tc.grad_accum * world_size
        mean_tokens = sum(len(r) for rec in train_rows for r in rec) / len(train_rows)
        self.tokens_per_step = round(self.global_batch * mean_tokens)
        self.lm_weight = cfg.finetune.lm_weight
        self._perms: dict[int, np.ndarray] = {}
        self._lengths = np.array([max(len(r) for r in rec) for rec in train_rows], dtype=np.int64)

    def epoch_order(self, epoch: int) -> np.ndarray:
        """The records of `epoch` in the order they are trained: a permutation drawn from (seed, epoch); with
        finetune.sort_chunk = K, each run of K x G records (G: the global batch) from the epoch's start is then
        sorted by length, ascending in even runs and descending in odd ones (so neighbouring runs meet at
        similar lengths), which makes a batch's rows alike in length: less padding, the same records."""
        n = len(self.train_rows)
        order = np.random.default_rng([self.cfg.train.seed, epoch]).permutation(n)
        k = self.cfg.finetune.sort_chunk
        if k:
            size = k * self.global_batch
            for c, start in enumerate(range(0, n, size)):
                part = order[start : start + size]
                ranked = part[np.argsort(self._lengths[part], kind="stable")]
                order[start : start + size] = ranked if c % 2 == 0 else ranked[::-1]
        return order

    def _record_ids(self, step: int, micro: int) -> list[int]:
        n = len(self.train_rows)
        first = step * self.global_batch + (micro * self.world_size + self.rank) * self.cfg.train.batch_size
        out = []
        for g in range(first, first + self.cfg.train.batch_size):
            epoch, pos = divmod(g, n)
            if epoch not in self._perms:
                self._perms = {epoch: self.epoch_order(epoch)}
            out.append(int(self._perms[epoch][pos]))
        return out

    def batch(self, step: int, micro: int) -> Batch:
        ids = self._record_ids(step, micro)
        return collate([self.train_rows[i] for i in ids], [self.train_labels[i] for i in ids], self.spec.pad_id)

    def val_batches(self, eval_steps: int) -> list[Batch]:
        bs = self.cfg.train.batch_size
        mine = list(range(self.rank, len(self.val_rows), self.world_size))
        return [
            collate([self.val_rows[i] for i in part], [self.val_labels[i] for i in part], self.spec.pad_id)
            for part in (mine[k : k + bs] for k in range(0, len(mine), bs))
        ]

    def loss(self, model: nn.Module, batch: Batch) -> torch.Tensor:
        targets = batch["targets"] if self.lm_weight > 0 else None
        scores, lm = model(batch["idx"], batch["extract_index"], targets)
        loss = F.cross_entropy(scores.float(), batch["labels"])
        return loss if lm is None else loss + self.lm_weight * lm

    def eval_batch(self, model: nn.Module, batch: Batch) -> dict[str, torch.Tensor]:
        scores, lm = model(batch["idx"], batch["extract_index"], batch["targets"])
        labels = batch["labels"]
        n_tokens = (batch["targets"] != -100).sum()
        return {
            "clf_loss": F.cross_entropy(scores.float(), labels, reduction="sum"),
            "lm_loss": lm.float() * n_tokens,
            "lm_tokens": n_tokens.float(),
            "right": (scores.argmax(-1) == labels).sum().float(),
            "records": torch.tensor(float(labels.numel()), device=labels.device),
        }

    def finish_eval(self, sums: dict[str, float]) -> dict[str, float]:
        return {
            "val_loss": sums["clf_loss"] / sums["records"],  # L2, the task's own loss
            "val_accuracy": sums["right"] / sums["records"],
            "val_lm_loss": sums["lm_loss"] / sums["lm_tokens"],
        }

    def build_model(self) -> nn.Module:
        gpt = self.base_model if self.base_model is not None else GPT(self.model_config)
        return ClassifierModel(gpt, self.spec.kind, self.spec.n_out, self.spec.group, self.cfg.finetune.clf_dropout)

    def restore_model(self, model: nn.Module, checkpoint_dir: Path, model_state: dict[str, torch.Tensor]) -> None:
        load_state_checked(model.gpt, model_state, source=str(checkpoint_dir / "model.safetensors"))
        load_head(model, checkpoint_dir)

    def write_model(self, model_state: dict[str, torch.Tensor], directory: Path) -> None:
        write_classifier(directory, self.model_config, self.spec, model_state, self.tokenizer)

    def state_dict(self) -> dict[str, Any]:
        return {
            "records": len(self.train_rows),
            "seed": self.cfg.train.seed,
            "global_batch": self.global_batch,
            "sort_chunk": self.cfg.finetune.sort_chunk,
        }

    def load_state_dict(self, state: dict[str, Any], source: str) -> None:
        saved_before = {"sort_chunk": 0}  # keys that runs saved before they existed lack, with what they did
        for key, mine in self.state_dict().items():
            if state.get(key, saved_before.get(key)) != mine:
                raise FinetuneDataError(
                    f"{source}: {key} was {state.get(key)!r} when saved, now {mine!r}: the training records or "
                    "settings changed, so the batch stream cannot continue where it stopped"
                )


# ---- building a run -----------------------------------------------------------------------------
def encode_records(data: LabelledData, spec: ClassifierSpec, tokenizer: Any) -> list[list[list[int]]]:
    """Each record's token rows (transforms applied); the texts are encoded in one batch."""
    flat = [t for r in data.records for t in r.texts]
    encoded = tokenizer.encode_batch(flat) if flat else []
    out, k = [], 0
    for r in data.records:
        n = len(r.texts)
        out.append(build_rows(spec.kind, encoded[k : k + n], spec.tokens, spec.max_len))
        k += n
    return out


def label_indices(data: LabelledData, spec: ClassifierSpec) -> list[int]:
    if spec.kind == "multiple_choice":
        for r in data.records:
            if len(r.texts) - 1 != spec.n_choices:
                raise FinetuneDataError(
                    f"{data.source}: a record with {len(r.texts) - 1} choices; the model has {spec.n_choices}"
                )
        return [int(r.label) for r in data.records]
    index = {label: i for i, label in enumerate(spec.labels)}
    out = []
    for n, r in enumerate(data.records, 1):
        if r.label not in index:
            raise FinetuneDataError(
                f"{data.source}: record {n}: label {r.label!r} is not one of the model's labels {spec.labels}"
            )
        out.append(index[r.label])
    return out


def _val_spec(cfg: FinetuneConfig) -> tuple[str, str]:
    """(what --val names, its default split): builtin:zh-sentiment validates on its val split by default."""
    if cfg.val:
        return cfg.val, "val"
    if cfg.data == BUILTIN_SENTIMENT:
        return BUILTIN_SENTIMENT, "val"
    return "", ""


def prepare_base(cfg: FinetuneConfig, train: LabelledData) -> tuple[GPT, Any, ClassifierSpec]:
    """The base GPT with the transform tokens added (tokenizer and embedding), and the classifier's spec."""
    from gptkit.checkpoint import load_model
    from gptkit.tokenizer import Tokenizer
    from gptkit.tokenizer.extend import add_special_tokens
    from gptkit.vocab import grow_vocab

    if not cfg.base:
        raise ConfigError("finetune.base: no base checkpoint given (--base CKPT)")
    base = Path(cfg.base)
    if not (base / "config.json").is_file():
        raise ConfigError(f"finetune.base: {base}: not a gptkit checkpoint directory (no config.json)")
    model = load_model(base)
    tok = Tokenizer.load(base)
    present = [name for name in TRANSFORM_TOKENS if name in tok.special_tokens]
    old_vocab = tok.vocab_size
    if present and len(present) < len(TRANSFORM_TOKENS):
        raise ConfigError(f"finetune.base: {base}: its tokenizer has only some transform tokens ({present})")
    if not present:
        ext = add_special_tokens(tok, list(TRANSFORM_TOKENS))
        tok = ext.tokenizer
        model = grow_vocab(model, tok.vocab_size, pieces=ext.pieces, init=cfg.token_init, seed=0)
    if cfg.dropout is not None:
        model = _with_dropout(model, cfg.dropout)
    ids = [tok.special_tokens[name] for name in TRANSFORM_TOKENS]
    labels = label_set(train)
    n_choices = len(train.records[0].texts) - 1 if train.kind == "multiple_choice" else 0
    max_len = min(cfg.max_len or model.config.block_size, model.config.block_size)
    spec = ClassifierSpec(
        kind=train.kind,
        labels=labels,
        n_choices=n_choices,
        tokens=TransformTokens(*ids),
        pad_id=tok.eot_id,
        max_len=max_len,
        vocab_growth={
            "base": str(base),
            "base_vocab_size": old_vocab,
            "added": [] if present else list(TRANSFORM_TOKENS),
            "init": cfg.token_init,
        },
    )
    return model.train(), tok, spec


def _with_dropout(model: GPT, rate: float) -> GPT:
    """The same weights in a GPT whose config has dropout `rate` (every dropout module follows it)."""
    from gptkit.checkpoint import model_state_for_saving

    new = GPT(model.config.replace(dropout=rate))
    load_state_checked(new, model_state_for_saving(model), source="base model")
    return new


def build_task(
    cfg: FinetuneRunConfig, run_dir: Path, resume: bool, rank: int = 0, world_size: int = 1
) -> ClassifierTask:
    """Read the records and the base (or, resuming, the newest checkpoint's model files) into a task."""
    from gptkit.checkpoint import load_model_config
    from gptkit.tokenizer import Tokenizer
    from gptkit.train import checkpoint as ckpt

    ft = cfg.finetune
    if not ft.data:
        raise ConfigError("finetune.data: no training records given (--data TRAIN.jsonl | builtin:zh-sentiment)")
    train = read_labelled(ft.data, ft.task, split="train")
    base_model = None
    if resume:
        last = ckpt.latest_checkpoint(run_dir)
        if last is None:
            raise ConfigError(f"{run_dir}: no complete checkpoint to resume from (in {ckpt.CHECKPOINTS}/)")
        spec, tok, model_config = read_spec(last), Tokenizer.load(last), load_model_config(last)
        if spec.kind != train.kind:
            raise FinetuneDataError(f"{ft.data}: {train.kind} records, but the run in {run_dir} is {spec.kind}")
    else:
        base_model, tok, spec = prepare_base(ft, train)
        model_config = base_model.config
    val_name, val_split = _val_spec(ft)
    val = read_labelled(val_name, ft.task, split=val_split) if val_name else None
    if val is not None and val.kind != train.kind:
        raise FinetuneDataError(f"{val.source}: {val.kind} records, but the training records are {train.kind}")
    derive_schedule(cfg, len(train.records), world_size)
    return ClassifierTask(
        cfg,
        spec,
        model_config,
        tok,
        encode_records(train, spec, tok),
        label_indices(train, spec),
        encode_records(val, spec, tok) if val else [],
        label_indices(val, spec) if val else [],
        base_model=base_model,
        rank=rank,
        world_size=world_size,
    )


def finetune_classify(
    config: FinetuneRunConfig, run_dir: str | os.PathLike, *, resume: bool = False, quiet: bool = False
):
    """Fine-tune per `config` into `run_dir` (or continue its newest checkpoint); returns a TrainResult."""
    from gptkit.train import distributed as D
    from gptkit.train.trainer import Trainer

    run_dir = Path(run_dir)
    config.finetune.validate()
    finished = False
    try:
        dist = D.init_distributed(config.train.device)
        task = build_task(config, run_dir, resume, dist.rank, dist.world_size)
        trainer = Trainer(config, run_dir, resume=resume, task=task, quiet=quiet)
        if not quiet and dist.is_main:
            print(
                f"fine-tuning {spec_summary(task.spec)} on {len(task.train_rows):,} records "
                f"({len(task.val_rows):,} validate), lm_weight {config.finetune.lm_weight}, "
                f"{config.train.max_steps} steps of {task.global_batch}",
                flush=True,
            )
        result = trainer.run()
        finished = True
        return result
    finally:
        D.shutdown(wait_for_peers=finished)


def spec_summary(spec: ClassifierSpec) -> str:
    if spec.kind == "multiple_choice":
        return f"multiple choice ({spec.n_choices} choices)"
    shown = ", ".join(map(str, spec.labels[:5])) + (", ..." if len(spec.labels) > 5 else "")
    return f"{spec.kind} ({len(spec.labels)} labels: {shown})"
