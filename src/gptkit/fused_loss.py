"""The LM head and its cross-entropy in one pass, a chunk of rows at a time, without a (N, V) logits tensor.

`linear_cross_entropy(x, weight, targets)` equals `F.cross_entropy(x @ weight[:V].T, targets, ignore_index=-100)`
(the mean over the rows whose target is not -100). For a small model with a large vocabulary the head is most of
a CPU training step (the demo: 4 x 128 wide, 8k BPE, 2,048 rows: the head's three matrix products, the
log-softmax forward and backward and the zero fill of nll_loss's (2048, 8000) gradient were more than half of it),
and most of that is the (N, V) float32 tensors going to memory and back: logits, log-probabilities, their
gradient. Here each chunk of `chunk_rows` rows makes its logits (a few MB, which stay in cache), turns them into
their gradient in place (softmax minus the one-hot target, over the number of counted rows) and multiplies it
out at once into the gradients of x and of the weight; backward only scales those by the incoming gradient.

With `softcap` c > 0 the logits are c * tanh(z / c) of the products z (gptkit.fused_loss.cap_logits, the one
definition the model's other heads use too); their gradient is then scaled by 1 - tanh(z / c)^2 per chunk.

Precision: under CPU/CUDA autocast (bfloat16 / float16) the three matrix products run in that dtype, as
autocast runs `lm_head`; the log-sum-exp, the loss and the logits' gradient are always float32, and the
weight's gradient is accumulated in float32. Without autocast everything is in x's dtype.
"""

from __future__ import annotations

import torch

IGNORE_INDEX = -100
CHUNK_ROWS = 256  # 256 x 8000 float32 logits = 8 MB


def cap_logits(logits: torch.Tensor, softcap: float) -> torch.Tensor:
    """c * tanh(logits / c) for softcap c > 0 (bounded in (-c, c), about the identity near 0); c = 0: logits."""
    if softcap <= 0:
        return logits
    return torch.tanh(logits / softcap) * softcap


def _compute_dtype(x: torch.Tensor) -> torch.dtype:
    device = x.device.type
    if torch.is_autocast_enabled(device):
        return torch.get_autocast_dtype(device)
    return x.dtype


class _LinearCrossEntropy(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, targets, vocab_size, chunk_rows, compute_dtype, softcap):
        # x (N, C), weight (Vp, C) with Vp >= vocab_size, targets (N,) int64.
        acc_dtype = torch.float32 if compute_dtype in (torch.bfloat16, torch.float16) else x.dtype
        need_x, need_w = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        w = weight[:vocab_size].to(compute_dtype)  # (V, C)
        xs = x.to(compute_dtype)
        counted = targets != IGNORE_INDEX  # (N,)
        n_counted = counted.sum().clamp(min=1)
        safe = targets.clamp(min=0).unsqueeze(1)  # (N, 1): ignored rows point at column 0, then get weight 0
        row_weight = counted.to(acc_dtype) / n_counted.to(acc_dtype)  # (N,): 1 / n for counted rows, else 0
        grad_x = torch.empty_like(xs) if need_x else None
        grad_w = torch.zeros(w.shape, dtype=acc_dtype, device=x.device) if need_w else None
        loss = torch.zeros((), dtype=acc_dtype, device=x.device)
        for r0 in range(0, x.shape[0], chunk_rows):
            r1 = min(r0 + chunk_rows, x.shape[0])
            xc = xs[r0:r1]  # (n, C)
            logits = (xc @ w.T).to(acc_dtype)  # (n, V)
            cap_slope = None
            if softcap > 0:  # logits = c * tanh(z / c), in place; d logits / d z = 1 - tanh^2
                tanh = logits.div_(softcap).tanh_()
                cap_slope = 1.0 - tanh.square() if (need_x or need_w) else None
                logits = tanh.mul_(softcap)
            target_logit = logits.gather(1, safe[r0:r1]).squeeze(1)  # (n,)
            # log-sum-exp and softmax from one exp pass over the chunk, in place: exp(logits - max) / sum.
            row_max = logits.amax(dim=1, keepdim=True)  # (n, 1)
            exps = logits.sub_(row_max).exp_()
            sums = exps.sum(dim=1)  # (n,)
            lse = row_max.squeeze(1) + sums.log()
            weight_c = row_weight[r0:r1]
            loss += ((lse - target_logit) * weight_c).sum()
            if grad_x is None and grad_w is None:
                continue
            # d loss / d logits = (softmax - onehot) * row_weight, made in place over the chunk.
            probs = exps.mul_((weight_c / sums).unsqueeze(1))
            probs.scatter_add_(1, safe[r0:r1], -weight_c.unsqueeze(1))
            if cap_slope is not None:
                probs.mul_(cap_slope)
            g = probs.to(compute_dtype)  # (n, V)
            if grad_x is not None:
                torch.mm(g, w, out=grad_x[r0:r1])  # (n, C)
            if grad_w is not None:
                if g.dtype == acc_dtype:
                    grad_w.addmm_(g.T, xc)
                else:
                    grad_w += (g.T @ xc).to(acc_dtype)
        ctx.vocab_size, ctx.weight_shape, ctx.weight_dtype, ctx.x_dtype = (
            vocab_size,
            weight.shape,
            weight.dtype,
            x.dtype,
        )
        ctx.save_for_backward(grad_x, grad_w)
        return loss

    @staticmethod
    def backward(ctx, grad_loss):
        grad_x, grad_w = ctx.saved_tensors
        dx = dw = None
        if grad_x is not None and ctx.needs_input_grad[0]:
            dx = (grad_x * grad_loss).to(ctx.x_dtype)
        if grad_w is not None and ctx.needs_input_grad[1]:
            dw = (grad_w * grad_loss).to(ctx.weight_dtype)
            if ctx.weight_shape[0] > ctx.vocab_size:  # padding rows are never predicted: no gradient
                dw = torch.cat([dw, dw.new_zeros(ctx.weight_shape[0] - ctx.vocab_size, ctx.weight_shape[1])])
        return dx, dw, None, None, None, None, None


def linear_cross_entropy(
    x: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    vocab_size: int | None = None,
    chunk_rows: int = CHUNK_ROWS,
    softcap: float = 0.0,
) -> torch.Tensor:
    """Mean cross-entropy of the logits x @ weight[:vocab_size].T against targets (-100: not counted), as a
    float32 scalar under autocast (else x's dtype). x (N, C) or (B, T, C), weight (Vp, C), targets x's leading
    shape. vocab_size: the real vocabulary (the rows past it, padding, are never predicted); default all rows.
    softcap: the logits are capped as `cap_logits` does (0: not)."""
    V = weight.shape[0] if vocab_size is None else vocab_size
    C = x.shape[-1]
    if weight.shape[1] != C or targets.shape != x.shape[:-1] or not 0 < V <= weight.shape[0]:
        raise ValueError(
            f"linear_cross_entropy: x {tuple(x.shape)}, weight {tuple(weight.shape)}, targets "
            f"{tuple(targets.shape)}, vocab_size {V} do not fit"
        )
    dtype = _compute_dtype(x)
    with torch.autocast(x.device.type, enabled=False):
        return _LinearCrossEntropy.apply(
            x.reshape(-1, C), weight, targets.reshape(-1), V, chunk_rows, dtype, float(softcap)
        )
