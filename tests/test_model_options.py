"""Model options beside the papers' GPT (rotary, RMSNorm, ReLU^2, SwiGLU, QK-norm, untied head) against the
independent float64 forward of tests/reference.py; rotary against its complex-number formula."""

from __future__ import annotations

import pytest
import torch

from gptkit import preset
from gptkit.errors import ConfigError, InteropError
from gptkit.interop.hf import config_to_hf
from gptkit.model import GPT, apply_rotary, rotary_cos_sin
from tests.reference import reference_logits, rotate_pairs
from tests.test_model import randomized, small_config

OPTIONS = [
    dict(position_embedding="rotary"),
    dict(norm="rmsnorm"),
    dict(activation="relu2"),
    dict(activation="swiglu", n_inner=40),
    dict(qk_norm=True),
    dict(
        position_embedding="rotary", norm="rmsnorm", activation="relu2", qk_norm=True, tie_embeddings=False, bias=False
    ),
    dict(position_embedding="rotary", activation="swiglu", rope_base=500.0, norm_position="post"),
    dict(logit_softcap=0.3, tie_embeddings=False),  # randomized logits are ~1 wide: well into the tanh's bend
]


@pytest.mark.parametrize("overrides", OPTIONS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()))
def test_options_match_float64_reference(overrides):
    cfg = small_config(**overrides)
    model = randomized(cfg, torch.float64)
    idx = torch.randint(0, cfg.vocab_size, (3, 17))
    torch.testing.assert_close(model(idx), reference_logits(model.state_dict(), cfg, idx), rtol=0, atol=1e-10)


def test_rotary_matches_the_complex_formula_and_depends_on_relative_position():
    hs, T = 16, 11
    x = torch.randn(2, 3, T, hs, dtype=torch.float64)
    cos, sin = rotary_cos_sin(torch.arange(T).unsqueeze(0), hs, 10000.0, torch.float64)
    got = apply_rotary(x, cos, sin)
    expected = torch.stack([rotate_pairs(x[:, h], 10000.0) for h in range(3)], dim=1)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    # q . k after rotation depends on the positions only through their difference.
    q, k = torch.randn(hs, dtype=torch.float64), torch.randn(hs, dtype=torch.float64)

    def dot(pq: int, pk: int) -> float:
        c, s = rotary_cos_sin(torch.tensor([[pq, pk]]), hs, 10000.0, torch.float64)
        rq = apply_rotary(q.view(1, 1, 1, hs), c[:, :, :1], s[:, :, :1])
        rk = apply_rotary(k.view(1, 1, 1, hs), c[:, :, 1:], s[:, :, 1:])
        return float((rq * rk).sum())

    assert dot(7, 3) == pytest.approx(dot(104, 100), abs=1e-10)


def test_presets_keep_the_papers_architecture_and_hf_refuses_the_options():
    for name in ("gpt1", "gpt2", "gpt2-xl", "gpt3-small", "gpt3-175b"):
        cfg = preset(name)
        assert (cfg.position_embedding, cfg.norm, cfg.qk_norm) == ("learned", "layernorm", False)
        assert cfg.activation == "gelu_tanh" and cfg.tie_embeddings and not cfg.zero_init_proj
    for overrides, word in [
        (dict(position_embedding="rotary"), "rotary"),
        (dict(norm="rmsnorm"), "norm=rmsnorm"),
        (dict(activation="swiglu"), "activation=swiglu"),
        (dict(qk_norm=True), "qk_norm"),
        (dict(logit_softcap=15.0), "logit_softcap=15.0"),
    ]:
        with pytest.raises(InteropError, match=word):
            config_to_hf(small_config(**overrides))
    with pytest.raises(ConfigError, match="rotary positions need an even head width"):
        small_config(position_embedding="rotary", n_embd=36, n_head=4)
    with pytest.raises(ConfigError, match="norm: 'batchnorm' is not one of"):
        small_config(norm="batchnorm")
    with pytest.raises(ConfigError, match="logit_softcap: must be 0 .off. or a positive number, got -1"):
        small_config(logit_softcap=-1.0)


@pytest.mark.parametrize("tied", [True, False])
def test_zero_init_proj_zeroes_the_branch_outputs_only_and_training_moves_them(tied):
    torch.manual_seed(0)
    plain = GPT(small_config(tie_embeddings=tied, bias=False))
    torch.manual_seed(0)
    model = GPT(small_config(tie_embeddings=tied, bias=False, zero_init_proj=True))
    zeroed = {f"h.{i}.{part}.c_proj.weight" for i in range(2) for part in ("attn", "mlp")}
    if not tied:
        zeroed.add("lm_head.weight")
    weights, reference = dict(model.named_parameters()), dict(plain.named_parameters())
    for name, p in weights.items():
        if name in zeroed:
            assert torch.count_nonzero(p) == 0, name
        else:  # the rest is the plain init, value for value (same seed)
            assert torch.equal(p, reference[name]), name
    idx = torch.randint(0, 101, (2, 9))
    # Each block is the identity at the start: the hidden state is ln_f of the token + position embeddings.
    hidden = model(idx, output_hidden=True)
    torch.testing.assert_close(hidden, model.ln_f(model.wte(idx) + model.wpe(torch.arange(9))), rtol=0, atol=0)
    logits = model(idx)
    if not tied:
        assert torch.count_nonzero(logits) == 0  # uniform predictions
    # Training moves every zeroed matrix: an untied head gets a gradient at once (the blocks' c_proj only at
    # the next step, since nothing flows back through a zero head), a tied one passes gradients to all.
    targets = torch.randint(0, 101, (2, 9))
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for step in range(2):
        opt.zero_grad()
        model(idx, targets)[1].backward()
        if step == 0:
            first = {name for name in zeroed if torch.count_nonzero(weights[name].grad) > 0}
            assert first == (zeroed if tied else {"lm_head.weight"})
        opt.step()
    for name in zeroed:  # (the head's vocabulary padding rows stay zero)
        w = weights[name][:101] if name == "lm_head.weight" else weights[name]
        assert torch.count_nonzero(w) == w.numel(), name


def test_relu_squared_matches_its_formula_forward_and_backward():
    from gptkit.model import relu_squared

    x = torch.randn(3, 5, 16, dtype=torch.float64, requires_grad=True)
    x.data[0, 0, :4] = 0.0  # the kink: relu's gradient there is 0, so relu(x)^2's is too
    assert torch.autograd.gradcheck(relu_squared, (x,))
    grad = torch.randn_like(x)
    (got,) = torch.autograd.grad(relu_squared(x), x, grad)
    assert torch.equal(relu_squared(x), torch.clamp(x, min=0) ** 2)
    assert torch.allclose(got, 2 * torch.clamp(x, min=0) * grad, rtol=0, atol=1e-15)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # under autocast it keeps its input's dtype
        assert relu_squared(x.detach().float().bfloat16()).dtype == torch.bfloat16
