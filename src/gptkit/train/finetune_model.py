"""The fine-tuned model: ClassifierModel (a GPT and a linear head on the extract token's final state), its
batches (`collate`), and its directory: config.json "classifier" (`ClassifierSpec`) + classifier.safetensors
beside the GPT's own files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from gptkit.checkpoint import read_config_json, save_model_state, update_config_json
from gptkit.config import ModelConfig
from gptkit.errors import CheckpointError
from gptkit.fused_loss import linear_cross_entropy
from gptkit.model import GPT
from gptkit.train.finetune_data import KINDS, TransformTokens, rows_per_record
from gptkit.train.task import Batch

CLASSIFIER_SECTION = "classifier"  # config.json section of a fine-tuned model
HEAD_FILE = "classifier.safetensors"


# ---- the model --------------------------------------------------------------------------------
class ClassifierModel(nn.Module):
    """A GPT and a linear head on the final state of each row's extract token.

    forward(idx (R, T), extract_index (R,), targets (R, T) or None) -> (scores, lm_loss or None):
    scores (N, labels) for classification / entailment (R = N), similarity (R = 2N: the two orders' states
    added before the head), or (N, choices) for multiple choice (R = N x choices, one score per row).
    Rows are right-padded, so no attention mask is needed: causal attention never reaches the padding after
    a row's tokens, and positions count from 0 as they would alone.
    """

    def __init__(self, gpt: GPT, kind: str, n_out: int, group: int, clf_dropout: float) -> None:
        super().__init__()
        self.gpt = gpt
        self.kind = kind
        self.group = group  # rows per record
        self.clf_dropout = nn.Dropout(clf_dropout)
        self.score = nn.Linear(gpt.config.n_embd, n_out, bias=False)
        nn.init.normal_(self.score.weight, std=0.02)

    def forward(
        self, idx: torch.Tensor, extract_index: torch.Tensor, targets: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        hidden = self.gpt(idx, output_hidden=True)  # (R, T, C)
        last = hidden[torch.arange(idx.shape[0], device=idx.device), extract_index]  # (R, C)
        if self.kind == "similarity":
            last = last.view(-1, 2, last.shape[-1]).sum(1)  # (N, C): both orders added
        scores = self.score(self.clf_dropout(last))  # (N or R, n_out)
        if self.kind == "multiple_choice":
            scores = scores.view(-1, self.group)  # (N, choices)
        lm_loss = None
        if targets is not None:
            # Only the counted positions (a third of a length-sorted batch is padding) go through the LM head,
            # in one fused pass without a logits tensor (gptkit.fused_loss): the mean over them, as
            # F.cross_entropy(ignore_index=-100) of the full logits gives.
            keep = targets != -100
            lm_loss = linear_cross_entropy(
                hidden[keep], self.gpt.lm_head.weight, targets[keep], vocab_size=self.gpt.config.vocab_size
            )
        return scores, lm_loss


def collate(records: list[list[list[int]]], labels: list[int] | None, pad_id: int) -> Batch:
    """Rows of records -> a right-padded batch: idx, attention_mask, targets (next token, -100 past the
    row's end), extract_index (last real position), labels."""
    rows = [row for rec in records for row in rec]
    T = max(len(r) for r in rows)
    idx = torch.full((len(rows), T), pad_id, dtype=torch.long)
    targets = torch.full((len(rows), T), -100, dtype=torch.long)
    lengths = torch.tensor([len(r) for r in rows])
    for i, row in enumerate(rows):
        t = torch.tensor(row)
        idx[i, : len(row)] = t
        targets[i, : len(row) - 1] = t[1:]
    batch = {
        "idx": idx,
        "attention_mask": (torch.arange(T) < lengths.unsqueeze(1)).long(),
        "targets": targets,
        "extract_index": lengths - 1,
    }
    if labels is not None:
        batch["labels"] = torch.tensor(labels, dtype=torch.long)
    return batch


@dataclass
class ClassifierSpec:
    """What config.json "classifier" records: enough to encode inputs and read the head's outputs."""

    kind: str
    labels: list[Any]  # the label of each output ([] for multiple choice: outputs are choices)
    n_choices: int  # multiple choice only (else 0)
    tokens: TransformTokens
    pad_id: int
    max_len: int
    vocab_growth: dict[str, Any]  # base_vocab_size, added (token names), init, base

    @property
    def n_out(self) -> int:
        return 1 if self.kind == "multiple_choice" else len(self.labels)

    @property
    def group(self) -> int:
        return rows_per_record(self.kind, self.n_choices)

    def to_dict(self) -> dict[str, Any]:
        return {
            "task": self.kind,
            "labels": self.labels,
            "n_choices": self.n_choices,
            "tokens": self.tokens.to_dict(),
            "pad_id": self.pad_id,
            "max_len": self.max_len,
            "vocab_growth": self.vocab_growth,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str) -> ClassifierSpec:
        try:
            spec = cls(
                kind=d["task"],
                labels=list(d["labels"]),
                n_choices=int(d["n_choices"]),
                tokens=TransformTokens(**{k: int(v) for k, v in d["tokens"].items()}),
                pad_id=int(d["pad_id"]),
                max_len=int(d["max_len"]),
                vocab_growth=dict(d["vocab_growth"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise CheckpointError(
                f"{source}: {CLASSIFIER_SECTION} section is malformed ({type(e).__name__}: {e})"
            ) from None
        if spec.kind not in KINDS:
            raise CheckpointError(f"{source}: {CLASSIFIER_SECTION}.task {spec.kind!r} is not one of {', '.join(KINDS)}")
        return spec


def write_classifier(
    directory: Path, model_config: ModelConfig, spec: ClassifierSpec, state: dict[str, torch.Tensor], tokenizer: Any
) -> None:
    """Write a fine-tuned model directory from a ClassifierModel state dict ("gpt.*" and "score.weight")."""
    gpt_state = {k.removeprefix("gpt."): v for k, v in state.items() if k.startswith("gpt.")}
    save_model_state(model_config, gpt_state, directory)
    save_file({"score.weight": state["score.weight"].contiguous()}, str(directory / HEAD_FILE))
    update_config_json(directory, {CLASSIFIER_SECTION: spec.to_dict()})
    tokenizer.save(directory)


def read_spec(directory: Path) -> ClassifierSpec:
    data = read_config_json(directory)
    if CLASSIFIER_SECTION not in data:
        raise CheckpointError(
            f"{directory / 'config.json'}: no {CLASSIFIER_SECTION!r} section (not a fine-tuned classifier; "
            "make one with `gptkit finetune classify`)"
        )
    return ClassifierSpec.from_dict(data[CLASSIFIER_SECTION], source=str(directory / "config.json"))


def load_head(model: ClassifierModel, directory: Path) -> None:
    path = directory / HEAD_FILE
    try:
        head = load_file(str(path), device="cpu")
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"{path}: cannot be read as safetensors ({e})") from None
    weight = head.get("score.weight")
    if weight is None or tuple(weight.shape) != tuple(model.score.weight.shape) or not weight.is_floating_point():
        shape = None if weight is None else tuple(weight.shape)
        raise CheckpointError(f"{path}: score.weight has shape {shape}, expected {tuple(model.score.weight.shape)}")
    with torch.no_grad():
        model.score.weight.copy_(weight)
