"""The eager decoder (any device): greedy or sampling; prompts of different lengths left-padded into one
batch; finished rows are dropped from the batch (and the cache) so they stop costing compute."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from gptkit.generation.decoding import Events, choose, device_of, left_pad
from gptkit.generation.sampling import History, apply_processors, logits_processors, penalty_processors
from gptkit.generation.settings import GenerationSettings
from gptkit.model import GPT, KVCache


def decode_eager(model: GPT, rows: list[list[int]], s: GenerationSettings, stopped: set[int]) -> Iterator[Events]:
    device, V = device_of(model), model.config.vocab_size
    chain = logits_processors(s.sampling) if s.strategy == "sample" else penalty_processors(s.sampling)
    eos = set(s.eos_ids)
    alive = list(range(len(rows)))  # row id of each batch row still generating
    with torch.inference_mode():
        alive_t = torch.arange(len(rows), device=device)
        history = History.start(
            rows,
            V,
            device,
            seen=s.sampling.needs_seen,
            tokens=s.sampling.needs_tokens,
            utf8=s.valid_utf8,
            counts=s.sampling.needs_counts,
        )
        idx, mask = left_pad(rows, device)
        P = idx.shape[1]
        cache = KVCache(model.config, len(rows), P + s.max_new_tokens - 1, device=device, dtype=model.wte.weight.dtype)
        logits = model(idx, attention_mask=mask, kv_cache=cache, last_logits_only=True)[:, -1]
    for step in range(s.max_new_tokens):
        with torch.inference_mode():
            nxt = choose(apply_processors(logits.float(), chain, history), s, step, alive_t)
        tokens = nxt.tolist()
        yield list(zip(alive, tokens, strict=True))
        keep = [i for i, (row, t) in enumerate(zip(alive, tokens, strict=True)) if t not in eos and row not in stopped]
        if not keep or step == s.max_new_tokens - 1:
            return
        with torch.inference_mode():
            history.append(nxt, tokens)
            if len(keep) < len(alive):  # drop finished rows from the batch and the cache
                keep_t = torch.tensor(keep, device=device)
                cache.reorder(keep_t)
                history.select(keep, keep_t)
                nxt, alive_t = nxt[keep_t], alive_t[keep_t]
                mask = mask[keep_t] if mask is not None else None
                alive = [alive[i] for i in keep]
            if mask is not None:
                mask = torch.cat([mask, mask.new_ones(len(alive), 1)], dim=1)
            logits = model(nxt.unsqueeze(1), attention_mask=mask, kv_cache=cache)[:, -1]


__all__ = ["decode_eager"]
