"""The Trainer's evaluation: the mean loss over the fixed val batches, val nats per character, and the short
text sample printed at each evaluation. A mixin of gptkit.train.trainer.Trainer (it uses the trainer's model,
task, val batches, device and log)."""

from __future__ import annotations

import time
from typing import Any

import torch

from gptkit.errors import ConfigError, GptkitError
from gptkit.train import distributed as D
from gptkit.train.metrics import format_duration


class EvaluationMixin:
    """evaluate(), sample() and the per-evaluation record; see Trainer for the attributes they read."""

    @torch.no_grad()
    def evaluate(self) -> float | None:
        """Mean loss over the fixed val batches, averaged over all ranks (the task's other metrics of the
        same pass go to self.last_eval).

        Runs the module without the compile and DDP wrappers: an eval-mode graph would be a second
        compilation, and evaluation needs no gradient sync (an FSDP2 module is sharded in place, so its
        forward still gathers what it needs).
        """
        if not self._val_batches:
            return None
        model = self.raw_model
        model.eval()
        sums: dict[str, torch.Tensor] = {}
        for batch in self._val_batches:
            with self.autocast():
                stats = self.task.eval_batch(model, self._batch_to_device(batch))
            for key, value in stats.items():
                sums[key] = sums.get(key, 0) + value.detach().float()
        model.train()
        keys = sorted(sums)
        totals = D.all_reduce_sum(torch.stack([sums[k] for k in keys]), self.dist).tolist()  # one host sync
        self.last_eval = self.task.finish_eval(dict(zip(keys, totals, strict=True)))
        return self.last_eval["val_loss"]

    def _chars_per_val_token(self) -> float | None:
        """Characters per target token of the fixed val batches (all ranks), as gptkit.eval.lm counts them;
        None without a tokenizer. val_loss / this is the val loss in nats per character."""
        if self.data is None or self.data.tokenizer is None or not self._val_batches:
            return None  # a task other than pretraining reports its own metrics
        from gptkit.eval.lm import count_units, token_text_units

        chars_of, _ = token_text_units(self.data.tokenizer)
        chars = sum(count_units(b["targets"], chars_of) for b in self._val_batches)
        tokens = sum(b["targets"].numel() for b in self._val_batches)
        counts = torch.tensor([float(chars), float(tokens)], device=self.device)
        chars, tokens = D.all_reduce_sum(counts, self.dist).tolist()
        return chars / tokens if chars else None

    def _sample_prompt_ids(self) -> list[int] | None:
        """The token ids the eval samples start from (checked now, not at the first evaluation)."""
        tok = self.data.tokenizer
        if not (self.is_gpt and self.tc.sample_tokens and tok is not None):
            return None
        try:
            ids = [tok.eot_id, *tok.encode(self.tc.sample_prompt)]
        except GptkitError as e:
            raise ConfigError(f"train.sample_prompt: {e}") from None
        if len(ids) >= self.model_config.block_size:
            raise ConfigError(
                f"train.sample_prompt: {len(ids)} tokens leave no room in block_size {self.model_config.block_size}"
            )
        return ids

    def sample(self) -> str | None:
        """A short continuation of train.sample_prompt, to see what the model has learnt."""
        if self._sample_ids is None:
            return None
        from gptkit import generate
        from gptkit.generation.utf8 import Utf8Table

        tok = self.data.tokenizer
        n_new = min(self.tc.sample_tokens, self.model_config.block_size - len(self._sample_ids))
        model = self.raw_model
        model.eval()
        with self.autocast():
            out = generate(
                model,
                [self._sample_ids],
                max_new_tokens=n_new,
                strategy="sample",
                top_k=200,
                seed=0,
                valid_utf8=Utf8Table.for_tokenizer(tok),  # whole characters only, as Generator does
            )[0]
        model.train()
        decoder = tok.stream_decoder()
        text = "".join(decoder.push(t) for t in out) + decoder.flush(drop_incomplete=True)
        return self.tc.sample_prompt + text

    def _eval_and_record(self, record: dict[str, Any] | None = None) -> float | None:
        t0 = time.perf_counter()
        val = self.evaluate()
        record = dict(record or {"step": self.step, "tokens": 0, "elapsed_s": 0.0})
        record["elapsed_s"] = round(time.perf_counter() - self._t0, 3)  # with this evaluation
        record["val_loss"] = val
        record.update({k: v for k, v in self.last_eval.items() if k != "val_loss"})
        if val is not None and self._val_chars_per_token:
            record["val_nats_per_char"] = val / self._val_chars_per_token
        if val is not None:
            self.last_val_loss = val
            if self.best_val_loss is None or val < self.best_val_loss:
                self.best_val_loss = val
        if self.metrics:
            self.metrics.write(record)
        sample = self.sample() if self.dist.is_main or self.tc.parallel == "fsdp" else None
        extra = "".join(f", {k} {v:.4f}" for k, v in self.last_eval.items() if k != "val_loss")
        self.log(f"step {self.step}: val loss {val:.4f}{extra} ({format_duration(time.perf_counter() - t0)})")
        if sample is not None:
            self.log("  sample: " + sample.replace("\n", "\n          "))
        return val
