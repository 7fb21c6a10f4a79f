"""HF transformers GPT-2 <-> gptkit: configs, weight names and layouts, and directory conversion.

HF's GPT-2 stores the projection weights of attention and MLP as `Conv1D`, shaped (in, out), where
gptkit uses nn.Linear, shaped (out, in): those four matrices per block are transposed both ways.
Only local directories are read; nothing is downloaded.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from gptkit.checkpoint import load_model, load_state_checked, model_state_for_saving, save_model
from gptkit.config import ModelConfig
from gptkit.errors import ConfigError, InteropError
from gptkit.files import check_destination, directory_written_atomically
from gptkit.model import GPT

# Matrices stored as Conv1D (in, out) in HF GPT-2.
_CONV1D_SUFFIXES = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
# HF activation names -> gptkit. "gelu_new" and "gelu_pytorch_tanh" are both the tanh approximation.
_ACTIVATIONS_FROM_HF = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu", "relu": "relu"}
_ACTIVATIONS_TO_HF = {"gelu_tanh": "gelu_new", "gelu": "gelu", "relu": "relu"}
# Buffers some HF GPT-2 checkpoints carry that are not weights (the causal mask and its fill value).
_HF_NON_WEIGHTS = (["attn", "bias"], ["attn", "masked_bias"])  # h.{i}.attn.bias, not h.{i}.attn.c_attn.bias
# Tokenizer files a HF GPT-2 directory may carry; copied along by import and export.
TOKENIZER_FILES = ("vocab.json", "merges.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")
TOKENIZER_FILES += ("vocab.txt",)  # BERT-style WordPiece (the GPT2-Chinese checkpoints)


# ---- configs ----------------------------------------------------------------------------------
def config_from_hf(hf: dict[str, Any], source: str = "config.json") -> ModelConfig:
    """A ModelConfig equal to HF GPT-2 config `hf`; features gptkit does not model are refused by name."""
    model_type = hf.get("model_type")
    if model_type != "gpt2":
        raise InteropError(f'{source}: model_type is {model_type!r}; only HF GPT-2 ("gpt2") is supported')
    act = hf.get("activation_function", "gelu_new")
    if act not in _ACTIVATIONS_FROM_HF:
        raise InteropError(
            f"{source}: activation_function {act!r} is not supported (supported: {', '.join(_ACTIVATIONS_FROM_HF)})"
        )
    for key, bad in (("scale_attn_by_inverse_layer_idx", True), ("scale_attn_weights", False)):
        if hf.get(key, not bad) == bad:
            raise InteropError(f"{source}: {key}={bad} changes the attention scale; gptkit does not model it")
    if hf.get("add_cross_attention"):
        raise InteropError(f"{source}: add_cross_attention=true is an encoder-decoder feature; not supported")
    dropouts = {hf.get(k, 0.1) for k in ("resid_pdrop", "embd_pdrop", "attn_pdrop")}
    try:
        return ModelConfig(
            vocab_size=hf["vocab_size"],
            block_size=hf.get("n_positions", hf.get("n_ctx", 1024)),
            n_layer=hf["n_layer"],
            n_head=hf["n_head"],
            n_embd=hf["n_embd"],
            n_inner=hf.get("n_inner"),
            dropout=max(dropouts),  # gptkit has one rate; GPT-2's configs use the same for all three
            bias=True,
            norm_position="pre",
            position_embedding="learned",
            activation=_ACTIVATIONS_FROM_HF[act],
            tie_embeddings=hf.get("tie_word_embeddings", True),
            layer_norm_eps=hf.get("layer_norm_epsilon", 1e-5),
        ).replace()
    except KeyError as e:
        raise InteropError(f"{source}: missing field {e.args[0]!r}") from None
    except ConfigError as e:
        raise InteropError(f"{source}: {e}") from None


def config_to_hf(config: ModelConfig) -> dict[str, Any]:
    """HF GPT2Config fields for `config`; refuses what HF GPT-2 cannot express, saying why."""
    if config.norm_position != "pre":
        raise InteropError(
            "HF GPT-2 places LayerNorm before each sublayer (pre-LN); this model is post-LN "
            "(GPT-1 style) and cannot be expressed as GPT-2"
        )
    if config.position_embedding != "learned":
        raise InteropError(
            f"HF GPT-2 has learned position embeddings; this model uses {config.position_embedding} "
            "positions, which GPT-2 cannot express"
        )
    for differs, setting in (
        (config.norm != "layernorm", f"norm={config.norm}"),
        (config.activation not in _ACTIVATIONS_TO_HF, f"activation={config.activation}"),
        (config.qk_norm, "qk_norm=true"),
        (config.value_embeddings > 0, f"value_embeddings={config.value_embeddings} (extra token tables in attention)"),
        (config.smear, "smear=true (the previous token's embedding mixed in)"),
        (config.logit_softcap > 0, f"logit_softcap={config.logit_softcap} (the head's logits capped by tanh)"),
    ):
        if differs:
            raise InteropError(f"HF GPT-2 cannot express {setting} (it has LayerNorm, GELU/ReLU and plain attention)")
    return {
        "architectures": ["GPT2LMHeadModel"],
        "model_type": "gpt2",
        "vocab_size": config.vocab_size,
        "n_positions": config.block_size,
        "n_ctx": config.block_size,
        "n_embd": config.n_embd,
        "n_layer": config.n_layer,
        "n_head": config.n_head,
        "n_inner": config.n_inner,
        "activation_function": _ACTIVATIONS_TO_HF[config.activation],
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": config.dropout,
        "layer_norm_epsilon": config.layer_norm_eps,
        "initializer_range": 0.02,
        "scale_attn_weights": True,
        "tie_word_embeddings": config.tie_embeddings,
        "bos_token_id": 50256 if config.vocab_size == 50257 else config.vocab_size - 1,
        "eos_token_id": 50256 if config.vocab_size == 50257 else config.vocab_size - 1,
        "use_cache": True,
        "torch_dtype": "float32",
    }


# ---- weights ----------------------------------------------------------------------------------
def state_from_hf(hf_state: dict[str, torch.Tensor], config: ModelConfig, source: str) -> dict[str, torch.Tensor]:
    """gptkit tensors (vocabulary rows padded with zeros) from a HF GPT-2 state dict."""
    state: dict[str, torch.Tensor] = {}
    for name, tensor in hf_state.items():
        key = name.removeprefix("transformer.")
        if key.split(".")[-2:] in _HF_NON_WEIGHTS:
            continue
        if key == "lm_head.weight" and config.tie_embeddings:
            continue  # tied to wte; HF may or may not store it
        if key.endswith(_CONV1D_SUFFIXES):
            tensor = tensor.t()
        state[key] = tensor.contiguous()
    pad = config.padded_vocab_size - config.vocab_size
    for key in ("wte.weight", "lm_head.weight"):
        if key in state and pad and state[key].shape[0] == config.vocab_size:
            state[key] = torch.cat([state[key], state[key].new_zeros(pad, state[key].shape[1])])
    return state


def state_to_hf(model: GPT) -> dict[str, torch.Tensor]:
    """HF GPT-2 tensors (`transformer.` prefix, Conv1D layout, no vocabulary padding) for `model`."""
    config = model.config
    out: dict[str, torch.Tensor] = {}
    for key, tensor in model_state_for_saving(model).items():
        if key.endswith(_CONV1D_SUFFIXES):
            tensor = tensor.t()
        if key in ("wte.weight", "lm_head.weight"):
            tensor = tensor[: config.vocab_size]
        name = key if key == "lm_head.weight" else f"transformer.{key}"
        out[name] = tensor.detach().cpu().contiguous()
    # HF GPT-2 always has biases; a bias-free model is exactly the same model with zero biases.
    for name, module in model.named_modules():
        if isinstance(module, (nn.Linear, nn.LayerNorm)) and name != "lm_head" and module.bias is None:
            out[f"transformer.{name}.bias"] = torch.zeros(module.weight.shape[0], dtype=module.weight.dtype)
    return out


def read_hf_state(src: Path) -> tuple[dict[str, torch.Tensor], str]:
    """Tensors of a HF directory: model.safetensors, a sharded safetensors index, or pytorch_model.bin."""
    single = src / "model.safetensors"
    index = src / "model.safetensors.index.json"
    legacy = src / "pytorch_model.bin"
    try:
        if single.is_file():
            return load_file(str(single)), str(single)
        if index.is_file():
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
            state: dict[str, torch.Tensor] = {}
            for shard in shards:
                state.update(load_file(str(src / shard)))
            return state, str(index)
        if legacy.is_file():
            return _load_plain_tensor_pickle(legacy), str(legacy)
    except (SafetensorError, OSError, RuntimeError, KeyError, json.JSONDecodeError) as e:
        raise InteropError(f"{src}: cannot read the weights ({type(e).__name__}: {e})") from None
    raise InteropError(f"{src}: no model.safetensors, model.safetensors.index.json or pytorch_model.bin found")


def _load_plain_tensor_pickle(path: Path) -> dict[str, torch.Tensor]:
    """A pytorch_model.bin, loaded with weights_only=True: tensors and plain containers only, so nothing in it
    runs. Anything else (a pickled class or function) is refused by name, in one line."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(e))
        what = f"it references {found.group(1)}" if found else str(e).splitlines()[0]
        raise InteropError(
            f"{path}: refused: not a plain tensor file ({what}; only tensors are loaded, and nothing in the "
            "file was run); convert it to model.safetensors with the tool that made it"
        ) from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InteropError(f"{path}: refused: not a plain tensor file (expected a dict of name -> tensor)")
    return state


# ---- directories ------------------------------------------------------------------------------
def import_hf(src_dir: str | os.PathLike, out_dir: str | os.PathLike, *, force: bool = False) -> Path:
    """Convert a local HF GPT-2 directory into a gptkit checkpoint directory; returns `out_dir`.

    `out_dir` may not be `src_dir`, inside it or hold it, nor a non-empty directory unless `force` (which
    replaces it); it is written into a temporary directory renamed into place, so a failure leaves it as it was.
    """
    src = Path(src_dir)
    cfg_path = src / "config.json"
    if not cfg_path.is_file():
        raise InteropError(f"{cfg_path}: not found (expected a HF GPT-2 model directory)")
    check_destination(out_dir, (src,), force)
    try:
        hf_cfg = json.loads(cfg_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise InteropError(f"{cfg_path}: not valid JSON ({e})") from None
    from gptkit.interop.hf_classifier import import_classifier, is_hf_classifier

    if is_hf_classifier(hf_cfg):
        with directory_written_atomically(out_dir) as tmp:
            import_classifier(src, hf_cfg, tmp)
        return Path(out_dir)
    config = config_from_hf(hf_cfg, source=str(cfg_path))
    hf_state, weights_source = read_hf_state(src)
    state = state_from_hf(hf_state, config, weights_source)
    with torch.device("meta"):
        model = GPT(config)
    model.to_empty(device="cpu")
    load_state_checked(model, {k: v.float() for k, v in state.items()}, source=weights_source)
    model.reset_buffers()
    with directory_written_atomically(out_dir) as tmp:
        save_model(model, tmp)
        copy_tokenizer_files(src, tmp)
    return Path(out_dir)


def export_hf(ckpt_dir: str | os.PathLike, out_dir: str | os.PathLike, *, force: bool = False) -> Path:
    """Write a directory that `transformers.GPT2LMHeadModel.from_pretrained` loads as it is (a fine-tuned
    classifier: `GPT2ForSequenceClassification.from_pretrained`, see interop/hf_classifier.py). `out_dir` as
    for `import_hf` (never the checkpoint itself or inside it; a non-empty directory only with `force`)."""
    from gptkit.interop.hf_classifier import export_classifier, is_classifier_dir

    check_destination(out_dir, (ckpt_dir,), force)
    if is_classifier_dir(ckpt_dir):
        with directory_written_atomically(out_dir) as tmp:
            export_classifier(ckpt_dir, tmp)
        return Path(out_dir)
    model = load_model(ckpt_dir)
    hf_cfg = config_to_hf(model.config)
    tok = _tokenizer_if_present(Path(ckpt_dir))
    if tok is not None:  # its ids, e.g. after `tokenizer extend` appended tokens behind <|endoftext|>
        hf_cfg.update(bos_token_id=tok.bos_id, eos_token_id=tok.eot_id)
    with directory_written_atomically(out_dir) as tmp:
        save_file(state_to_hf(model), str(tmp / "model.safetensors"), metadata={"format": "pt"})
        (tmp / "config.json").write_text(json.dumps(hf_cfg, indent=2) + "\n", encoding="utf-8")
        copy_tokenizer_files(Path(ckpt_dir), tmp)
    return Path(out_dir)


def _tokenizer_if_present(ckpt_dir: Path):
    from gptkit.train.data import load_tokenizer_if_present

    return load_tokenizer_if_present(ckpt_dir)


def copy_tokenizer_files(src: Path, dst: Path) -> list[str]:
    """Copy the GPT-2 tokenizer files present in `src` to `dst`; returns the names copied."""
    copied = [name for name in TOKENIZER_FILES if (src / name).is_file()]
    for name in copied:
        shutil.copyfile(src / name, dst / name)
    return copied
