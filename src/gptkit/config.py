"""Model configuration: one dataclass, named presets, and strict loading from dicts.

`ModelConfig` is saved inside every checkpoint (config.json, section "model") and read back with
`ModelConfig.from_dict`, which rejects unknown keys and bad values with a message naming them.
`dataclass_from_dict` is the shared strict loader that other config sections (training, data) reuse.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gptkit.errors import ConfigError

T = TypeVar("T")

_SIMPLE_TYPES = {"int": int, "float": float, "bool": bool, "str": str}


def _check_value(name: str, annotation: str, value: Any, where: str) -> Any:
    """Check `value` against a field's annotation and return it (an int is accepted for a float).

    Annotations are strings here (every config module uses `from __future__ import annotations`):
    "int", "float", "bool", "str", "X | None" and "list[X]". Other annotations are not policed;
    their dataclass's `validate()` checks them.
    """
    ann = annotation.replace(" ", "")
    optional = ann.endswith("|None") or ann.startswith("None|")
    base = ann.replace("|None", "").replace("None|", "")
    if value is None:
        if optional:
            return None
        raise ConfigError(f"{where}{name}: must not be null (expected {base})")
    if base.startswith("list["):
        inner = base[5:-1]
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}{name}: expected a list of {inner}, got {value!r}")
        return [_check_value(f"{name}[{i}]", inner, v, where) for i, v in enumerate(value)]
    expected = _SIMPLE_TYPES.get(base)
    if expected is None:
        return value
    if expected is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, expected) or (expected is not bool and isinstance(value, bool)):
        raise ConfigError(f"{where}{name}: expected {base}, got {value!r} ({type(value).__name__})")
    return value


def dataclass_from_dict(cls: type[T], data: dict[str, Any], where: str = "") -> T:
    """Build dataclass `cls` from `data`, refusing unknown keys and values of the wrong type.

    `where` prefixes messages (e.g. "config.json: model.") so the user can find the field.
    """
    if not isinstance(data, dict):
        raise ConfigError(f"{where.rstrip('.')}: expected a table of settings, got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(
            f"{where}{unknown[0]}: unknown setting for {cls.__name__} (known: {', '.join(sorted(fields))})"
        )
    kwargs = {name: _check_value(name, str(fields[name].type), value, where) for name, value in data.items()}
    obj = cls(**kwargs)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        try:
            validate()
        except ConfigError as e:
            raise ConfigError(f"{where}{e}") from None
    return obj


def _choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{name}: {value!r} is not one of {', '.join(choices)}")


NORM_POSITIONS = ("pre", "post")
POSITION_EMBEDDINGS = ("learned", "sinusoidal", "rotary")
ACTIVATIONS = ("gelu_tanh", "gelu", "relu", "relu2", "swiglu")
NORMS = ("layernorm", "rmsnorm")
INITS = ("gpt2", "xavier", "kaiming")
ATTENTIONS = ("sdpa", "explicit")
SMEAR_CHANNELS = 12  # smear's gate reads this many leading channels of each position's embedding


@dataclass
class ModelConfig:
    """The decoder-only transformer of the GPT papers. Defaults are GPT-2 small (124M)."""

    vocab_size: int = 50257
    block_size: int = 1024  # context length: the most positions one sequence may have
    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    n_inner: int | None = None  # feed-forward width; None means 4 * n_embd (all GPT papers)
    dropout: float = 0.0  # on embeddings, attention weights and residual branches
    bias: bool = True  # biases in Linear layers and LayerNorms
    norm_position: str = "pre"  # "post": GPT-1 (LN after each residual add); "pre": GPT-2/3 (+ final LN)
    position_embedding: str = "learned"  # or "sinusoidal" (fixed, as in Vaswani et al. 2017)
    activation: str = "gelu_tanh"  # GELU with the tanh approximation (GPT-1/2), exact "gelu", or "relu"
    tie_embeddings: bool = True  # LM head shares the token embedding matrix
    init: str = "gpt2"  # "gpt2": N(0, 0.02), residual projections / sqrt(2 n_layer); "xavier"; "kaiming"
    layer_norm_eps: float = 1e-5
    vocab_pad_multiple: int = 64  # embedding rows padded to a multiple of this for faster matmuls
    attention: str = "sdpa"  # "sdpa" (fused kernels) or "explicit" softmax(QK^T/sqrt(d) + mask)V
    # Options beside the papers' GPT (the presets keep the defaults, which are the papers'):
    # position_embedding "rotary" (RoFormer, Su et al. 2021; rotates q and k, no position weights),
    # activation "relu2" (ReLU squared, So et al. 2021) or "swiglu" (Shazeer 2020: silu(x W) * (x V), so
    # c_fc is twice ffn_dim wide), norm "rmsnorm" (Zhang & Sennrich 2019), qk_norm (RMS-normalise each
    # head's queries and keys before the dot product, no gain), tie_embeddings false (an untied head),
    # zero_init_proj (the output layer of every residual branch, both c_proj, and an untied lm_head start
    # at zero, so each block starts as the identity; the forward is unchanged).
    norm: str = "layernorm"  # "layernorm" (the papers') or "rmsnorm"
    qk_norm: bool = False
    zero_init_proj: bool = False
    rope_base: float = 10000.0  # rotary: angle of pair i at position p is p / rope_base^(2i / head_dim)
    # value_embeddings N: N extra (Vp, C) token tables whose rows for the input ids are added, through a learned
    # per-layer scale, to the attention values of the first N layers and (shared, as in the modded-nanogpt
    # speedrun) of the last N layers not among those (gptkit.token_mixing.value_embedding_layers); 0: none.
    # smear: each position gets a learned, gated share of the previous position's token embedding
    # (gptkit.token_mixing.Smear); it starts at zero, so the model starts as the one without it.
    value_embeddings: int = 0
    smear: bool = False
    # logit_softcap c > 0: the head's logits become c * tanh(logits / c) (Gemma 2; the modded-nanogpt speedrun),
    # bounded in (-c, c), in training, evaluation and generation alike; 0: off (the papers' head).
    logit_softcap: float = 0.0

    def validate(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd", "vocab_pad_multiple"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.n_inner is not None and self.n_inner < 1:
            raise ConfigError(f"n_inner: must be at least 1 or null, got {self.n_inner}")
        if self.n_embd % self.n_head:
            raise ConfigError(
                f"n_embd: {self.n_embd} is not divisible by n_head={self.n_head} (each head needs an equal share)"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"dropout: must be in [0, 1), got {self.dropout}")
        if not (self.layer_norm_eps > 0 and math.isfinite(self.layer_norm_eps)):
            raise ConfigError(f"layer_norm_eps: must be a positive number, got {self.layer_norm_eps}")
        _choice("norm_position", self.norm_position, NORM_POSITIONS)
        _choice("position_embedding", self.position_embedding, POSITION_EMBEDDINGS)
        _choice("activation", self.activation, ACTIVATIONS)
        _choice("init", self.init, INITS)
        _choice("attention", self.attention, ATTENTIONS)
        _choice("norm", self.norm, NORMS)
        if self.position_embedding == "rotary" and self.head_dim % 2:
            raise ConfigError(f"n_embd: rotary positions need an even head width, got {self.head_dim}")
        if not (self.rope_base > 1 and math.isfinite(self.rope_base)):
            raise ConfigError(f"rope_base: must be a finite number > 1, got {self.rope_base}")
        if isinstance(self.value_embeddings, bool) or not 0 <= self.value_embeddings <= self.n_layer:
            raise ConfigError(
                f"value_embeddings: must be a number of tables from 0 to n_layer={self.n_layer}, "
                f"got {self.value_embeddings!r}"
            )
        if not (self.logit_softcap >= 0 and math.isfinite(self.logit_softcap)):
            raise ConfigError(f"logit_softcap: must be 0 (off) or a positive number, got {self.logit_softcap}")
        if self.smear and self.n_embd < SMEAR_CHANNELS:
            raise ConfigError(f"smear: its gate reads the first {SMEAR_CHANNELS} channels; n_embd is {self.n_embd}")
        if self.position_embedding == "sinusoidal" and self.n_embd % 2:
            raise ConfigError(f"n_embd: sinusoidal positions need an even width, got {self.n_embd}")

    # ---- derived sizes ------------------------------------------------------------------------
    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def ffn_dim(self) -> int:
        return self.n_inner if self.n_inner is not None else 4 * self.n_embd

    @property
    def padded_vocab_size(self) -> int:
        m = self.vocab_pad_multiple
        return (self.vocab_size + m - 1) // m * m

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "") -> ModelConfig:
        return dataclass_from_dict(cls, data, where)

    def replace(self, **changes: Any) -> ModelConfig:
        new = dataclasses.replace(self, **changes)
        new.validate()
        return new


@dataclass(frozen=True)
class Preset:
    description: str
    settings: dict[str, Any] = field(default_factory=dict)


_GPT2 = dict(vocab_size=50257, block_size=1024, dropout=0.1)  # HF's gpt2 configs use 0.1 dropout
# GPT-3 paper (Brown et al. 2020), Table 2.1: n_params, n_layers, d_model, n_heads (d_head follows);
# context 2048 and the GPT-2 BPE vocabulary for all eight models. The table prints d_model 5140 for
# 13B, which 40 heads of 128 do not divide; 5120 (= 40 x 128) is the width that matches its 13B count.
# For XL it prints 24 heads of d_head 128 with d_model 2048 (24 x 128 = 3072): we keep d_head 128 and
# d_model 2048, so 16 heads (as Pythia-1.4B, a GPT-3 XL-shaped model, does). Head count moves no parameters.
_GPT3 = dict(vocab_size=50257, block_size=2048, dropout=0.0)

PRESETS: dict[str, Preset] = {
    # Tiny presets for CPU work and tests.
    "tiny": Preset(
        "2 layers, 64 wide: unit tests and smoke runs",
        dict(vocab_size=512, block_size=128, n_layer=2, n_head=2, n_embd=64, dropout=0.0),
    ),
    "nano": Preset(
        "nanoGPT's CPU shakespeare_char model: 4 layers, 128 wide, block 64",
        dict(vocab_size=512, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0),
    ),
    "micro": Preset(
        "nanoGPT's 'baby GPT' (shakespeare_char on GPU): 6 layers, 384 wide, block 256",
        dict(vocab_size=512, block_size=256, n_layer=6, n_head=6, n_embd=384, dropout=0.2),
    ),
    "small": Preset(
        "8 layers, 256 wide, block 256: a few-minute CPU pretraining run",
        dict(vocab_size=8000, block_size=256, n_layer=8, n_head=8, n_embd=256, dropout=0.0),
    ),
    # GPT-1 (Radford et al. 2018): post-LN, learned positions, GELU, 40,478-token BPE, dropout 0.1.
    "gpt1": Preset(
        "GPT-1 (117M): 12 layers, 768 wide, 12 heads, context 512, post-LN",
        dict(vocab_size=40478, block_size=512, n_layer=12, n_head=12, n_embd=768, norm_position="post", dropout=0.1),
    ),
    # GPT-2 (Radford et al. 2019): pre-LN with a final LN, 50,257-token byte-level BPE, context 1024.
    "gpt2": Preset("GPT-2 small (124M)", dict(_GPT2, n_layer=12, n_head=12, n_embd=768)),
    "gpt2-medium": Preset("GPT-2 medium (355M)", dict(_GPT2, n_layer=24, n_head=16, n_embd=1024)),
    "gpt2-large": Preset("GPT-2 large (774M)", dict(_GPT2, n_layer=36, n_head=20, n_embd=1280)),
    "gpt2-xl": Preset("GPT-2 XL (1.5B)", dict(_GPT2, n_layer=48, n_head=25, n_embd=1600)),
    "gpt3-small": Preset("GPT-3 Small (125M)", dict(_GPT3, n_layer=12, n_head=12, n_embd=768)),
    "gpt3-medium": Preset("GPT-3 Medium (350M)", dict(_GPT3, n_layer=24, n_head=16, n_embd=1024)),
    "gpt3-large": Preset("GPT-3 Large (760M)", dict(_GPT3, n_layer=24, n_head=16, n_embd=1536)),
    "gpt3-xl": Preset("GPT-3 XL (1.3B)", dict(_GPT3, n_layer=24, n_head=16, n_embd=2048)),
    "gpt3-2.7b": Preset("GPT-3 2.7B", dict(_GPT3, n_layer=32, n_head=32, n_embd=2560)),
    "gpt3-6.7b": Preset("GPT-3 6.7B", dict(_GPT3, n_layer=32, n_head=32, n_embd=4096)),
    "gpt3-13b": Preset("GPT-3 13B", dict(_GPT3, n_layer=40, n_head=40, n_embd=5120)),
    "gpt3-175b": Preset("GPT-3 175B", dict(_GPT3, n_layer=96, n_head=96, n_embd=12288)),
}


def preset(name: str, **overrides: Any) -> ModelConfig:
    """The ModelConfig of a named preset, with `overrides` applied (validated)."""
    if name not in PRESETS:
        raise ConfigError(f"model.preset: unknown preset {name!r} (known: {', '.join(PRESETS)})")
    return ModelConfig.from_dict({**PRESETS[name].settings, **overrides}, where="")


__all__ = [
    "PRESETS",
    "ModelConfig",
    "Preset",
    "dataclass_from_dict",
    "preset",
]
