"""The Trainer's task hook (gptkit.train.task): a task other than pretraining trains through the same loop,
with its own batches (attention / loss masks), loss and eval metrics, checkpoints and exact resume."""

from __future__ import annotations

import json
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from gptkit.checkpoint import load_model
from gptkit.config import ModelConfig
from gptkit.errors import GptkitError
from gptkit.model import GPT
from gptkit.train.checkpoint import latest_checkpoint
from gptkit.train.config import load_run_config
from gptkit.train.task import Batch, Task, lm_loss
from gptkit.train.trainer import Trainer

VOCAB, HALF = 20, 6


class CountTask(Task):
    """Rows that count up from a random token (mod VOCAB - 1, skipping 0), right-padded to 16 with
    attention_mask 0; the LM loss counts on the second half only (loss_mask)."""

    resume_hint = "count --out {run_dir} --resume"

    def __init__(self) -> None:
        self.model_config = ModelConfig(vocab_size=VOCAB, block_size=16, n_layer=1, n_head=2, n_embd=32, dropout=0.0)
        self.tokens_per_step = 8 * 16
        self.position = 0

    def _rows(self, key: int) -> Batch:
        g = torch.Generator().manual_seed(key)
        start = torch.randint(0, VOCAB - 1, (8, 1), generator=g)
        seq = (start + torch.arange(2 * HALF)) % (VOCAB - 1) + 1  # (8, 12)
        idx = torch.zeros(8, 16, dtype=torch.long)
        idx[:, :12] = seq
        targets = torch.zeros_like(idx)
        targets[:, :11] = seq[:, 1:]
        attention_mask = (torch.arange(16) < 12).long().expand(8, 16).contiguous()
        loss_mask = ((torch.arange(16) >= HALF - 1) & (torch.arange(16) < 11)).long().expand(8, 16).contiguous()
        return {"idx": idx, "targets": targets, "attention_mask": attention_mask, "loss_mask": loss_mask}

    def batch(self, step: int, micro: int) -> Batch:
        return self._rows(1000 * step + micro)

    def val_batches(self, eval_steps: int) -> list[Batch]:
        return [self._rows(-1 - i) for i in range(eval_steps)]

    def loss(self, model, batch):
        return lm_loss(model, batch)

    def eval_batch(self, model, batch) -> dict[str, torch.Tensor]:
        logits = model(batch["idx"], attention_mask=batch["attention_mask"])
        keep = batch["loss_mask"].bool()
        right = (logits.argmax(-1) == batch["targets"])[keep]
        return {**super().eval_batch(model, batch), "right": right.sum(), "counted": keep.sum()}

    def finish_eval(self, sums: dict[str, float]) -> dict[str, float]:
        return {**super().finish_eval(sums), "val_count_accuracy": sums["right"] / sums["counted"]}

    def build_model(self):
        return GPT(self.model_config)

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position}

    def load_state_dict(self, state: dict[str, Any], source: str) -> None:
        if "position" not in state:
            raise GptkitError(f"{source}: no position")
        self.position = int(state["position"])

    def advance(self, step: int) -> None:
        self.position = step


def config(steps: int, *extra: str):
    settings = [
        f"train.max_steps={steps}",
        "train.lr=1e-2",
        "train.schedule=constant",
        "train.warmup_steps=0",
        "train.eval_interval=10",
        "train.eval_steps=2",
        "train.log_interval=1",
        "train.checkpoint_interval=5",
        "train.device=cpu",
        *extra,
    ]
    return load_run_config(None, settings)


def test_lm_loss_honours_the_loss_mask_against_a_float64_reference():
    task = CountTask()
    torch.manual_seed(0)
    model = GPT(task.model_config).eval()
    batch = task.batch(0, 0)
    with torch.no_grad():
        got = lm_loss(model, batch)
        logits = model(batch["idx"], attention_mask=batch["attention_mask"]).double()
    keep = batch["loss_mask"].bool()
    want = F.cross_entropy(logits[keep], batch["targets"][keep])
    assert keep.sum() == 8 * (11 - (HALF - 1))
    assert abs(got.item() - want.item()) < 1e-6


def test_a_task_trains_logs_its_metrics_and_saves_loadable_checkpoints(tmp_path):
    result = Trainer(config(30), tmp_path / "run", task=CountTask(), quiet=True).run()
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "val_loss" in r]
    assert [r["step"] for r in evals] == [0, 10, 20, 30]
    assert evals[-1]["val_loss"] < 0.5 * evals[0]["val_loss"]
    assert evals[-1]["val_count_accuracy"] > 0.9 > evals[0]["val_count_accuracy"]
    assert result.step == 30 and result.val_loss == evals[-1]["val_loss"]
    assert load_model(latest_checkpoint(tmp_path / "run")).config.vocab_size == VOCAB


def test_a_task_resumes_exactly(tmp_path):
    Trainer(config(10), tmp_path / "straight", task=CountTask(), quiet=True).run()
    Trainer(config(5), tmp_path / "resumed", task=CountTask(), quiet=True).run()
    task = CountTask()
    resumed = Trainer(config(10), tmp_path / "resumed", task=task, resume=True, quiet=True)
    assert resumed.step == 5 and task.position == 5
    resumed.run()
    a = load_file(str(latest_checkpoint(tmp_path / "straight") / "model.safetensors"))
    b = load_file(str(latest_checkpoint(tmp_path / "resumed") / "model.safetensors"))
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
