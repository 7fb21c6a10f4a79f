"""A fine-tuned classifier for use: `Classifier.load(DIR)`, `.predict(inputs)`, `.encode(text)`.

    clf = gptkit.Classifier.load("runs/sentiment")      # a fine-tuned model dir, or a finetune run dir (latest)
    clf.predict(["质量很好", "太差了"])                   # [("pos", {"neg": 0.03, "pos": 0.97}), ...]
    clf.encode("质量很好")                                # [<|start|>, ...text ids..., <|extract|>]

Inputs by task: classification a text; entailment / similarity a (text_a, text_b) pair; multiple choice a
(context, [choice, ...]) pair, whose label is the index of the chosen choice. A dict with the JSONL fields
({"text": ...}, {"text_a", "text_b"}, {"context", "choices"}) works for every task.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from gptkit.errors import GptkitError


def resolve_model_dir(path: str | os.PathLike) -> Path:
    """A fine-tuned model directory, or a finetune run directory's newest checkpoint (RUN_DIR/latest)."""
    from gptkit.checkpoint import CONFIG_FILE
    from gptkit.train.checkpoint import latest_checkpoint

    path = Path(path)
    if (path / CONFIG_FILE).is_file():
        return path
    last = latest_checkpoint(path) if path.is_dir() else None
    if last is None:
        raise GptkitError(f"{path}: neither a model directory (config.json) nor a run directory with checkpoints")
    return last


class Classifier:
    def __init__(self, model: Any, spec: Any, tokenizer: Any, directory: Path) -> None:
        self.model = model  # gptkit.train.finetune.ClassifierModel, eval mode
        self.spec = spec  # gptkit.train.finetune.ClassifierSpec
        self.tokenizer = tokenizer
        self.directory = directory

    @classmethod
    def load(cls, path: str | os.PathLike, *, device: str = "cpu") -> Classifier:
        from gptkit.checkpoint import load_model
        from gptkit.tokenizer import Tokenizer
        from gptkit.train.finetune import ClassifierModel, load_head, read_spec

        directory = resolve_model_dir(path)
        spec = read_spec(directory)
        gpt = load_model(directory, device=device)
        model = ClassifierModel(gpt, spec.kind, spec.n_out, spec.group, 0.0).to(device)
        load_head(model, directory)
        return cls(model.eval(), spec, Tokenizer.load(directory), directory)

    @property
    def labels(self) -> list[Any]:
        return list(self.spec.labels)

    # ---- encoding -------------------------------------------------------------------------------
    def _texts(self, item: Any) -> tuple[str, ...]:
        kind = self.spec.kind
        if isinstance(item, dict):
            from gptkit.train.finetune_data import parse_record

            return parse_record(item, kind, "input", labelled=False).texts
        if kind == "classification":
            if not isinstance(item, str):
                raise GptkitError(f"a classification input is a text, got {type(item).__name__}")
            return (item,)
        if kind in ("entailment", "similarity"):
            if not (isinstance(item, (tuple, list)) and len(item) == 2 and all(isinstance(t, str) for t in item)):
                raise GptkitError(f"a {kind} input is a (text_a, text_b) pair, got {item!r}")
            return tuple(item)
        if not (isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[1], (list, tuple))):
            raise GptkitError(f"a multiple-choice input is a (context, [choices]) pair, got {item!r}")
        if len(item[1]) != self.spec.n_choices:
            raise GptkitError(f"this model scores {self.spec.n_choices} choices, got {len(item[1])}")
        return (item[0], *item[1])

    def encode_rows(self, item: Any) -> list[list[int]]:
        """Every token row the model reads for one input (two for similarity, one per choice)."""
        from gptkit.train.finetune_data import build_rows

        encoded = [self.tokenizer.encode(t) for t in self._texts(item)]
        return build_rows(self.spec.kind, encoded, self.spec.tokens, self.spec.max_len)

    def encode(self, text: Any) -> list[int]:
        """The ids the model reads for `text` (transform tokens included); for one-row tasks
        (classification, entailment). Similarity and multiple choice read several rows: see encode_rows."""
        rows = self.encode_rows(text)
        if len(rows) != 1:
            raise GptkitError(f"a {self.spec.kind} input is read as {len(rows)} rows; use encode_rows")
        return rows[0]

    # ---- scoring --------------------------------------------------------------------------------
    @torch.no_grad()
    def logits(self, inputs: Sequence[Any], batch_size: int = 32) -> torch.Tensor:
        """Head outputs (N, labels) (multiple choice: (N, choices)) as float32 on the CPU."""
        from gptkit.train.finetune import collate

        device = self.model.score.weight.device
        out = []
        for k in range(0, len(inputs), batch_size):
            rows = [self.encode_rows(x) for x in inputs[k : k + batch_size]]
            batch = collate(rows, None, self.spec.pad_id)
            scores, _ = self.model(batch["idx"].to(device), batch["extract_index"].to(device))
            out.append(scores.float().cpu())
        n_out = self.spec.n_choices if self.spec.kind == "multiple_choice" else len(self.spec.labels)
        return torch.cat(out) if out else torch.zeros(0, n_out)

    def predict(self, inputs: Sequence[Any] | str, batch_size: int = 32) -> list[tuple[Any, dict[Any, float]]]:
        """(label, {label: probability}) for each input; multiple choice labels are choice indices."""
        if isinstance(inputs, str):
            raise GptkitError("predict takes a list of inputs; wrap one text as [text]")
        probs = torch.softmax(self.logits(list(inputs), batch_size), dim=-1)
        names = self.labels if self.spec.kind != "multiple_choice" else list(range(self.spec.n_choices))
        out = []
        for row in probs.tolist():
            table = dict(zip(names, row, strict=True))
            out.append((names[max(range(len(row)), key=row.__getitem__)], table))
        return out
