"""The output side of new vocabulary rows: a unigram prior fitted on the text the model will be trained on.

After `gptkit.vocab.grow_vocab` the new tokens' logits say nothing useful when the source model never read
their text (an English model extended with Chinese tokens): the loss then depends on how much probability
the new tokens get as a group and on how it is shared among them. `fit_output_prior` adds to each new
token k's output row (the embedding row when tied, else the LM head row) a component along the model's
mean final hidden state u (after the last LayerNorm, on the training windows):

    row_k += (beta + gamma * (l_k - mean(l))) / |u| * u / |u|,     l_k = log(count_k + 0.5)

so that at a typical position, where the final hidden state is close to u, token k's logit moves by about
beta + gamma * (l_k - mean l): a shared offset (the new tokens' mass as a group) plus gamma times their
log-frequency in the training text (gamma = 1: the unigram prior). beta and gamma are the two numbers that
minimise the mean cross-entropy of the grown model on windows of that text (L-BFGS through the model; the
rows' other parts and every other weight stay fixed). The fit needs no knowledge of the tokens: a source
that already predicts them well gets a small gamma (the pieces' rows carry that), an English source a
large one. Old rows are never touched, so logits over the old vocabulary on old-token text stay exact.
docs/continue.md has the measurements.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass

import torch
from torch.func import functional_call

from gptkit.errors import ConfigError
from gptkit.model import GPT

PRIOR_TOKENS = 16384  # training tokens the fit runs on (windows of the model's context length, or 256)
PRIOR_WINDOW = 256
_LOGIT_BUDGET = 1 << 24  # logits (tokens x vocab) per chunk of the fit's forward passes


@dataclass(frozen=True)
class PriorFit:
    """What fit_output_prior did, measured on its windows (mean over all target tokens)."""

    beta: float  # shared logit offset of the new tokens
    gamma: float  # weight of their centred log-frequency
    hidden_norm: float  # |u|, the norm of the mean final hidden state
    windows: int
    window_tokens: int
    new_target_share: float  # fraction of the targets that are new tokens
    loss_before: float  # nats per token
    loss_after: float
    new_mass_before: float  # mean probability on all new tokens together
    new_mass_after: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def training_windows(
    docs: Iterable[Sequence[int]], eot_id: int, window: int, max_tokens: int = PRIOR_TOKENS
) -> tuple[torch.Tensor, torch.Tensor]:
    """(windows (n, window+1), counts (max id + 1,)): documents joined by eot_id as training streams them;
    counts of every token over all of them; n evenly spaced windows covering about max_tokens."""
    stream: list[int] = []
    for ids in docs:
        stream.extend(ids)
        stream.append(eot_id)
    ids = torch.tensor(stream, dtype=torch.long)
    counts = torch.bincount(ids)
    available = (len(ids) - 1) // window
    if available < 1:
        raise ConfigError(f"prior text: {len(ids)} tokens, fewer than one window of {window + 1}")
    n = max(1, min(available, max_tokens // window))
    starts = torch.linspace(0, len(ids) - window - 1, n).long()  # (n,)
    return torch.stack([ids[s : s + window + 1] for s in starts.tolist()]), counts


def fit_output_prior(
    model: GPT, old_vocab_size: int, windows: torch.Tensor, counts: torch.Tensor, *, max_iter: int = 40
) -> PriorFit:
    """Fit beta and gamma (module docstring) on `windows` (n, T+1) of training token ids and add the prior to
    the new rows of `model` (ids old_vocab_size .. vocab_size-1) in place. `counts` (>= vocab_size,) are the
    token counts of the training text. Returns the fit and its before / after figures."""
    V = model.config.vocab_size
    if not 0 < old_vocab_size < V:
        raise ConfigError(f"old vocab_size {old_vocab_size} must be between 0 and the model's {V}")
    if windows.ndim != 2 or windows.shape[1] < 2:
        raise ConfigError(f"prior windows must be (n, T+1) token ids, got shape {tuple(windows.shape)}")
    if int(windows.max()) >= V or len(counts) > V:
        raise ConfigError(f"prior text has token ids beyond the model's vocab_size {V}")
    inputs, targets = windows[:, :-1], windows[:, 1:]  # (n, T)
    name = "wte.weight" if model.config.tie_embeddings else "lm_head.weight"
    param = dict(model.named_parameters())[name]
    was_training = model.training
    model.eval()
    device, dtype = param.device, param.dtype
    inputs, targets = inputs.to(device), targets.to(device)
    base = param.detach().clone()  # (Vp, C)
    full = torch.zeros(V, dtype=torch.float64)
    full[: len(counts)] = counts.double()
    logf = (full[old_vocab_size:] + 0.5).log()
    logf = (logf - logf.mean()).to(device, torch.float32)  # (n_new,) centred log-frequencies

    with torch.no_grad():
        u = torch.cat([model(x, output_hidden=True).float() for x in _chunks(inputs, V)]).mean((0, 1))  # (C,)
    u_norm = float(u.norm())
    if not u_norm > 0:
        raise ConfigError("the model's mean final hidden state is zero: no direction for the prior")
    direction = u / u_norm**2  # a logit change of c at a position whose hidden state is u: c * direction

    def weight(params: torch.Tensor) -> torch.Tensor:
        coef = params[0] + params[1] * logf  # (n_new,) logit offsets
        new = base[old_vocab_size:V].float() + coef[:, None] * direction  # (n_new, C)
        return torch.cat([base[:old_vocab_size], new.to(dtype), base[V:]])

    def loss_and_mass(params: torch.Tensor, grad: bool) -> tuple[torch.Tensor, float]:
        total = torch.zeros((), device=device)
        mass = 0.0
        for x, y in zip(_chunks(inputs, V), _chunks(targets, V), strict=True):
            with torch.set_grad_enabled(grad):
                logits, loss = functional_call(model, {name: weight(params)}, (x,), {"targets": y})
                part = loss * (y.numel() / targets.numel())
                if grad:
                    (g,) = torch.autograd.grad(part, params)
                    params.grad = g if params.grad is None else params.grad + g
            total += part.detach()
            mass += float(logits.detach().float().softmax(-1)[..., old_vocab_size:].sum(-1).sum()) / targets.numel()
        return total, mass

    zero = torch.zeros(2, device=device)
    loss0, mass0 = loss_and_mass(zero, grad=False)
    params = torch.zeros(2, device=device, requires_grad=True)
    opt = torch.optim.LBFGS([params], lr=1.0, max_iter=max_iter, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        params.grad = None
        return loss_and_mass(params, grad=True)[0]

    opt.step(closure)
    best = params.detach()
    loss1, mass1 = loss_and_mass(best, grad=False)
    if not float(loss1) < float(loss0):  # the fit can only help on its own text; keep the rows if it did not
        best = zero
        loss1, mass1 = loss0, mass0
    with torch.no_grad():
        param.copy_(weight(best))
    model.train(was_training)
    return PriorFit(
        beta=float(best[0]),
        gamma=float(best[1]),
        hidden_norm=u_norm,
        windows=int(windows.shape[0]),
        window_tokens=int(targets.shape[1]),
        new_target_share=float((targets >= old_vocab_size).double().mean()),
        loss_before=float(loss0),
        loss_after=float(loss1),
        new_mass_before=mass0,
        new_mass_after=mass1,
    )


def _chunks(rows: torch.Tensor, vocab: int) -> list[torch.Tensor]:
    """rows (n, T) cut into groups of rows whose logits (rows x T x vocab) stay within _LOGIT_BUDGET."""
    per = max(1, _LOGIT_BUDGET // (rows.shape[1] * vocab))
    return list(rows.split(per))
