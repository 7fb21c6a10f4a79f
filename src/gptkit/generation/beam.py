"""Beam search with HF transformers' semantics (length penalty, early stopping True / False / "never",
n-best), the cache reordered every step and finished prompts dropped from the batch."""

from __future__ import annotations

from collections.abc import Iterator

import torch

from gptkit.generation.decoding import Events, device_of, left_pad
from gptkit.generation.sampling import History, apply_processors, penalty_processors
from gptkit.generation.settings import GenerationSettings
from gptkit.model import GPT, KVCache

_NEG = -1.0e9  # HF's "impossible" score: finite so that sums and sorts stay well defined


def beam_search(model: GPT, prompts: list[list[int]], s: GenerationSettings, stopped: set[int]) -> Iterator[Events]:
    """Beam search with HF transformers' semantics (GenerationMixin._beam_search, v4.50+/v5):
    every step keeps the 2 * num_beams best continuations (more with several EOS ids) of all beams; among
    those ranked in the top num_beams, the ones that end (EOS, or the last step) become hypotheses scored
    sum(log p) / new_length ** length_penalty, and the best num_beams non-ending ones run on. A prompt is
    done when early_stopping is True and it has num_beams hypotheses, or when its best running beam cannot
    beat its worst hypothesis (at the current length; "never" with length_penalty > 0: at the longest)."""
    device, V = device_of(model), model.config.vocab_size
    nb, T, lp = s.num_beams, s.max_new_tokens, float(s.length_penalty)
    B = len(prompts)
    K = max(2, 1 + len(s.eos_ids)) * nb
    chain = penalty_processors(s.sampling)
    with torch.inference_mode():
        eos = torch.tensor(s.eos_ids, dtype=torch.long, device=device)
        idx, mask = left_pad(prompts, device)
        P = idx.shape[1]
        cache = KVCache(model.config, B, P + T - 1, device=device, dtype=model.wte.weight.dtype)
        logits = model(idx, attention_mask=mask, kv_cache=cache, last_logits_only=True)[:, -1]
        expand = torch.arange(B, device=device).repeat_interleave(nb)  # each prompt's cache row, once per beam
        cache.reorder(expand)
        logits, mask = logits[expand], (mask[expand] if mask is not None else None)
        beam_rows = [p for p in prompts for _ in range(nb)]
        history = History.start(
            beam_rows,
            V,
            device,
            seen=s.sampling.needs_seen,
            tokens=s.sampling.needs_tokens,
            utf8=s.valid_utf8,
            counts=s.sampling.needs_counts,
        )

        run_scores = torch.full((B, nb), _NEG, device=device)
        run_scores[:, 0] = 0.0  # only the first beam's continuations count at the first step
        run_tokens = torch.zeros(B, nb, T, dtype=torch.long, device=device)
        hyp_tokens = torch.zeros(B, nb, T, dtype=torch.long, device=device)
        hyp_scores = torch.full((B, nb), _NEG, device=device)
        hyp_len = torch.zeros(B, nb, dtype=torch.long, device=device)
        hyp_done = torch.zeros(B, nb, dtype=torch.bool, device=device)
        can_improve = torch.ones(B, dtype=torch.bool, device=device)
        top_nb = torch.arange(K, device=device) < nb  # (K,) candidates allowed to become hypotheses
        items = torch.arange(B, device=device)  # prompts still searching (rows of the state tensors)
        finals: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # prompt -> (tokens (nb, T), lengths (nb,))

        for t in range(T):
            n = items.numel()
            logp = apply_processors(torch.log_softmax(logits.float(), dim=-1), chain, history)
            total = (logp.view(n, nb, V) + run_scores[items].unsqueeze(-1)).view(n, nb * V)
            top_scores, top_idx = torch.topk(total, K, dim=-1)  # (n, K), best first
            src, tok = top_idx // V, top_idx % V  # beam each candidate extends, and its token
            cand_tokens = run_tokens[items].gather(1, src.unsqueeze(-1).expand(n, K, T)).clone()
            cand_tokens[:, :, t] = tok
            ends = torch.isin(tok, eos) if t < T - 1 else torch.ones_like(tok, dtype=torch.bool)

            # Running beams for the next step: the best nb candidates that do not end.
            running = top_scores + ends.float() * _NEG
            pick = torch.topk(running, nb, dim=-1).indices  # (n, nb)
            run_scores[items] = running.gather(1, pick)
            run_tokens[items] = cand_tokens.gather(1, pick.unsqueeze(-1).expand(n, nb, T))
            run_src = src.gather(1, pick)

            # Hypotheses: merge the ending candidates in the top nb into the best nb so far.
            cand = top_scores / ((t + 1) ** lp)
            if s.early_stopping is True:
                cand = cand + hyp_done[items].all(-1, keepdim=True).float() * _NEG
            cand = cand + (~can_improve[items]).unsqueeze(-1).float() * _NEG
            finishing = ends & top_nb
            cand = cand + (~finishing).float() * _NEG
            merged = torch.cat([hyp_scores[items], cand], dim=1)  # (n, nb + K)
            keep = torch.topk(merged, nb, dim=-1).indices
            hyp_scores[items] = merged.gather(1, keep)
            hyp_tokens[items] = torch.cat([hyp_tokens[items], cand_tokens], 1).gather(
                1, keep.unsqueeze(-1).expand(n, nb, T)
            )
            hyp_len[items] = torch.cat([hyp_len[items], torch.full((n, K), t + 1, device=device)], 1).gather(1, keep)
            hyp_done[items] = torch.cat([hyp_done[items], finishing], 1).gather(1, keep)

            # Can a running beam still beat the worst hypothesis?
            best_len = T if (s.early_stopping == "never" and lp > 0.0) else t + 1
            best_running = run_scores[items, :1] / (best_len**lp)
            worst = torch.where(hyp_done[items], hyp_scores[items].min(-1, keepdim=True).values, _NEG)
            can_improve[items] &= (best_running > worst).any(-1)
            finished = ~can_improve[items]
            if s.early_stopping is True:
                finished |= hyp_done[items].all(-1)
            if t == T - 1:
                finished[:] = True
            finished_list = finished.tolist()
            for j, f in enumerate(finished_list):
                if f:
                    finals[int(items[j])] = (hyp_tokens[items[j]], hyp_len[items[j]])
            if all(finished_list):
                break

            # Next step: reorder the cache and histories to the running beams; drop finished prompts.
            alive = [j for j, f in enumerate(finished_list) if not f]
            alive_t = torch.tensor(alive, device=device)
            beam_index = (alive_t.unsqueeze(1) * nb + run_src[alive_t]).view(-1)  # rows of the current batch
            beam_list = beam_index.tolist()
            cache.reorder(beam_index)
            history.select(beam_list, beam_index)
            mask = mask[beam_index] if mask is not None else None
            items = items[alive_t]
            nxt = run_tokens[items, :, t].reshape(-1)
            history.append(nxt)
            if mask is not None:
                mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
            logits = model(nxt.unsqueeze(1), attention_mask=mask, kv_cache=cache)[:, -1]

        events: Events = []
        n_ret = s.num_return_sequences
        for i in range(B):
            tokens, lengths = finals[i]
            for j in range(n_ret):
                events += [(i * n_ret + j, tk) for tk in tokens[j, : int(lengths[j])].tolist()]
    yield events


__all__ = ["beam_search"]
