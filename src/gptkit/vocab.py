"""Growing a model's vocabulary: the model side of `gptkit.tokenizer.extend`.

    ext = add_special_tokens(tok, ["<|start|>"])            # or learn_merges(tok, corpus, 8000)
    model = grow_vocab(model, ext.tokenizer.vocab_size, pieces=ext.pieces, init="mean")

Old rows of the embedding and of the LM head are copied unchanged, so on text made of old tokens the
logits over the old vocabulary are exactly the old model's; new rows are initialised by `init`, padding rows
(up to a multiple of `vocab_pad_multiple`) are zero as in a fresh model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from gptkit.checkpoint import load_state_checked, model_state_for_saving
from gptkit.errors import ConfigError
from gptkit.model import GPT

INITS = ("mean", "random")
RANDOM_STD = 0.02  # what GPT.reset_parameters gives embeddings in every init scheme


def grow_vocab(
    model: GPT,
    new_vocab_size: int,
    *,
    pieces: Sequence[Sequence[int]] | None = None,
    init: str = "mean",
    seed: int = 0,
) -> GPT:
    """A copy of `model` with `new_vocab_size` tokens (ids from the old vocab_size on are new).

    init="mean": new row k is the mean of the old rows `pieces[k]` (the old tokens its text used to split
    into: fast vocabulary transfer), or of all old rows where pieces[k] is empty or `pieces` is None (a
    neutral start for special tokens). init="random": N(0, 0.02) rows drawn with `seed`. The embedding
    and an untied LM head are initialised the same way, each from its own old rows. The copy is on the
    model's device and dtype, in the model's train/eval mode; the model itself is left as it was.
    """
    config = model.config
    old = config.vocab_size
    n_new = new_vocab_size - old
    if isinstance(new_vocab_size, bool) or not isinstance(new_vocab_size, int) or n_new < 1:
        raise ConfigError(f"new vocab_size must be an integer above the model's {old}, got {new_vocab_size!r}")
    if init not in INITS:
        raise ConfigError(f"init: {init!r} is not one of {', '.join(INITS)}")
    if pieces is not None:
        if len(pieces) != n_new:
            raise ConfigError(f"pieces: {len(pieces)} lists given for {n_new} new tokens")
        for k, p in enumerate(pieces):
            bad = [i for i in p if not 0 <= i < old]
            if bad:
                raise ConfigError(f"pieces[{k}]: id {bad[0]} is not an old token id (0 .. {old - 1})")

    new_config = config.replace(vocab_size=new_vocab_size)
    state = model_state_for_saving(model)
    names = ["wte.weight"] + ([] if config.tie_embeddings else ["lm_head.weight"])
    generator = torch.Generator(device="cpu").manual_seed(seed)
    for name in names:
        weight = state[name]  # (Vp, C)
        grown = weight.new_zeros(new_config.padded_vocab_size, weight.shape[1])  # (Vp', C), padding rows 0
        grown[:old] = weight[:old]
        grown[old:new_vocab_size] = _new_rows(weight[:old], n_new, pieces, init, generator)
        state[name] = grown
    with torch.device("meta"):
        bigger = GPT(new_config)
    bigger.to_empty(device=model.wte.weight.device)
    bigger.to(dtype=model.wte.weight.dtype)
    load_state_checked(bigger, state, source="grow_vocab")
    bigger.reset_buffers()
    return bigger.train(model.training)


def _new_rows(
    rows: torch.Tensor,
    n_new: int,
    pieces: Sequence[Sequence[int]] | None,
    init: str,
    generator: torch.Generator,
) -> torch.Tensor:
    """(n_new, C) rows for the new tokens from the old rows (V, C), computed in float64."""
    C = rows.shape[1]
    if init == "random":
        out = torch.randn(n_new, C, generator=generator, dtype=torch.float64) * RANDOM_STD
        return out.to(rows.device, rows.dtype)
    rows64 = rows.double()
    overall = rows64.mean(dim=0)
    out = torch.empty(n_new, C, dtype=torch.float64, device=rows.device)
    for k in range(n_new):
        p = pieces[k] if pieces is not None else ()
        out[k] = rows64[list(p)].mean(dim=0) if len(p) else overall
    return out.to(rows.dtype)
