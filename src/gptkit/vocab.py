"""Growing a model's vocabulary: the model side of `gptkit.tokenizer.extend`.

    ext = add_special_tokens(tok, ["<|start|>"])            # or learn_merges(tok, corpus, 8000)
    model = grow_vocab(model, ext.tokenizer.vocab_size, pieces=ext.pieces, init="mean")

Old rows of the embedding and of the LM head are copied unchanged, so on text made of old tokens the
logits over the old vocabulary are exactly the old model's; new rows are initialised by `init`, padding rows
(up to a multiple of `vocab_pad_multiple`) are zero as in a fresh model.

Why "centred" is the default for learned tokens (docs/continue.md has the measurements): the plain mean of
the pieces' rows inherits whatever those rows share. In a tied model, rows of tokens the source never read
(e.g. the UTF-8 bytes of Chinese in an English model) are only ever pushed down by the softmax, so they
all point one way ("never next") with about 3x the norm of a used row; their means are nearly one vector
(pairwise cosine 0.99), every new token starts identical and strongly unlikely, and training stalls.
Centring removes that shared part, keeps what distinguishes one new token from another, and scales it to
the size of a typical old row; what all new tokens share (e.g. "this is Chinese") is one direction that
training learns first anyway. `extend_checkpoint` then fits the new rows' output side on the training text
(gptkit.vocab_prior: how likely the new tokens are as a group and by their frequency), which is what an
English source cannot know and what decides the loss before training.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from gptkit.checkpoint import (
    CONFIG_FILE,
    load_model,
    load_state_checked,
    model_state_for_saving,
    save_model,
    update_config_json,
)
from gptkit.errors import ConfigError
from gptkit.model import GPT
from gptkit.text_inputs import TextInputs, iter_texts
from gptkit.vocab_prior import PRIOR_WINDOW, PriorFit, fit_output_prior, training_windows

INITS = ("centred", "mean", "random")
RANDOM_STD = 0.02  # what GPT.reset_parameters gives embeddings in every init scheme
CENTRED_NORM_SCALE = 0.5  # "centred": each new row's norm, as a fraction of the old rows' mean norm


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
    neutral start for special tokens). init="centred": for tokens with pieces, that mean minus the mean of
    the rows of every old token any new token's pieces use (the part all new tokens share), rescaled to
    CENTRED_NORM_SCALE x the old rows' mean norm, plus N(0, 0.02) noise drawn with `seed`; tokens without
    pieces get the "mean" row. init="random": N(0, 0.02) rows drawn with `seed`. The embedding, an untied LM
    head and the value-embedding tables are initialised the same way, each from its own old rows. The copy is on the
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
    names += [f"value_embeds.tables.{j}.weight" for j in range(config.value_embeddings)]
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
    if init == "centred":
        out = _centred(rows64, out, pieces, generator)
    return out.to(rows.dtype)


def _centred(
    rows64: torch.Tensor, means: torch.Tensor, pieces: Sequence[Sequence[int]] | None, generator: torch.Generator
) -> torch.Tensor:
    """(n_new, C): the rows of tokens with pieces centred and rescaled (see grow_vocab), the others `means`."""
    has = [k for k in range(means.shape[0]) if pieces is not None and len(pieces[k])]
    if not has:
        return means
    assert pieces is not None
    used = sorted({i for k in has for i in pieces[k]})
    shared = rows64[used].mean(dim=0)  # (C,) the part all these tokens' rows have in common
    target = CENTRED_NORM_SCALE * rows64.norm(dim=1).mean()
    noise = torch.randn(len(has), rows64.shape[1], generator=generator, dtype=torch.float64) * RANDOM_STD
    out = means.clone()
    distinct = means[has] - shared  # (n, C)
    norms = distinct.norm(dim=1, keepdim=True)
    # A token whose pieces' mean is exactly `shared` (e.g. the only new token) has no direction of its own.
    direction = torch.where(norms > 0, distinct / norms.clamp_min(1e-300), torch.zeros_like(distinct))
    out[has] = target * direction + noise.to(out.device)
    return out


# ---- a whole checkpoint: `gptkit tokenizer extend` --------------------------------------------------
@dataclass
class ExtendResult:
    out: Path
    old_vocab_size: int
    new_vocab_size: int
    init: str
    # characters per token on the corpus, all text and Han characters only (None: no Han in the corpus)
    chars_per_token: tuple[float, float]
    han_chars_per_token: tuple[float | None, float | None]
    pieces: list[list[int]]  # pieces[k]: the old ids new id old_vocab_size + k used to split into
    prior: PriorFit | None = None  # the output-side prior fitted on the training text (None: not asked)


def extend_checkpoint(
    model_dir: str | os.PathLike,
    inputs: TextInputs,
    n_add: int,
    out_dir: str | os.PathLike,
    *,
    init: str = "centred",
    prior: bool = True,
    prior_inputs: TextInputs | None = None,
    min_frequency: int = 2,
    seed: int = 0,
    progress: bool = False,
) -> ExtendResult:
    """Learn `n_add` tokens from `inputs` for the checkpoint's BPE tokenizer, grow its model to match
    (`init`: "centred", "mean" or "random", as grow_vocab), with `prior` fit the new rows' output-side
    unigram prior (gptkit.vocab_prior) on `prior_inputs` (the text the model will be trained on; default
    `inputs`), and write the new checkpoint to `out_dir`. `inputs` is read twice (learning, then
    measuring), so give paths or a list of texts. Nothing is written if anything is refused."""
    from gptkit.tokenizer import Tokenizer
    from gptkit.tokenizer.extend import learn_merges

    model_dir, out = Path(model_dir), Path(out_dir)
    if init not in INITS:
        raise ConfigError(f"init: {init!r} is not one of {', '.join(INITS)}")
    if out.resolve() == model_dir.resolve():
        raise ConfigError(f"--out {out}: is the source checkpoint; write the extended one elsewhere")
    if (out / CONFIG_FILE).exists():
        raise ConfigError(f"--out {out}: already holds a checkpoint ({CONFIG_FILE}); choose another directory")
    model = load_model(model_dir)
    tok = Tokenizer.load(model_dir)
    if tok.vocab_size != model.config.vocab_size:
        raise ConfigError(
            f"{model_dir}: the model has {model.config.vocab_size} vocabulary rows and the tokenizer "
            f"{tok.vocab_size} tokens; extending needs them equal"
        )
    if tok.kind != "bpe":
        raise ConfigError(f"{model_dir}: extending needs a byte-level BPE tokenizer; this one is {tok.kind!r}")
    before = _compression(tok, inputs)
    ext = learn_merges(tok, inputs, n_add, min_frequency=min_frequency, progress=progress)
    after = _compression(ext.tokenizer, inputs)
    grown = grow_vocab(model, ext.tokenizer.vocab_size, pieces=ext.pieces, init=init, seed=seed)
    fit = None
    if prior:
        window = min(grown.config.block_size, PRIOR_WINDOW)
        texts = iter_texts(inputs if prior_inputs is None else prior_inputs)
        windows, counts = training_windows((ext.tokenizer.encode(t) for t in texts), ext.tokenizer.eot_id, window)
        fit = fit_output_prior(grown, tok.vocab_size, windows, counts)
    save_model(grown, out)
    ext.tokenizer.save(out)
    record = {"checkpoint": str(model_dir), "added": ext.added, "init": init, "seed": seed}
    record["prior"] = fit.as_dict() if fit is not None else None
    update_config_json(out, {"extended_from": record})
    return ExtendResult(
        out=out,
        old_vocab_size=tok.vocab_size,
        new_vocab_size=ext.tokenizer.vocab_size,
        init=init,
        chars_per_token=(before[0], after[0]),
        han_chars_per_token=(before[1], after[1]),
        pieces=ext.pieces,
        prior=fit,
    )


def _compression(tok: Any, inputs: TextInputs) -> tuple[float, float | None]:
    """(characters per token, Han characters per token) of `tok` on `inputs`."""
    from gptkit.tokenizer.report import tokenizer_counts

    counts = tokenizer_counts(tok, inputs)  # (3, 3): rows other, Latin, Han; columns tokens, bytes, chars
    total = counts.sum(axis=0)
    han = counts[2]
    return (float(total[2] / total[0]) if total[0] else 0.0, float(han[2] / han[0]) if han[0] else None)
