"""HF transformers GPT2ForSequenceClassification <-> a gptkit fine-tuned classifier.

HF's model is exactly a classification / entailment head of gptkit.train.finetune: a bias-free `score`
Linear(n_embd, num_labels) on the final state of each row's last token that is not `pad_token_id` (gptkit pads
rows on the right with <|endoftext|>, which no encoded text contains). So export writes the GPT's tensors as
hf.py does, `score.weight`, and a config with num_labels, id2label / label2id (label names as strings) and
pad_token_id; the gptkit classifier section rides along as "gptkit_classifier", so import restores the model
exactly (transform token ids, label values, vocabulary growth). Similarity (two rows per input) and multiple
choice (a score per choice) have no HF GPT-2 counterpart and are refused.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from safetensors.torch import save_file

from gptkit.errors import InteropError

HF_ARCHITECTURE = "GPT2ForSequenceClassification"
SECTION = "gptkit_classifier"  # the gptkit classifier section inside the HF config.json
GPTKIT_TOKENIZER_FILE = "gptkit_tokenizer.json"


def is_classifier_dir(path: str | os.PathLike) -> bool:
    from gptkit.checkpoint import CONFIG_FILE, read_config_json
    from gptkit.train.finetune_model import CLASSIFIER_SECTION

    path = Path(path)
    return (path / CONFIG_FILE).is_file() and CLASSIFIER_SECTION in read_config_json(path)


def is_hf_classifier(hf_cfg: dict[str, Any]) -> bool:
    return HF_ARCHITECTURE in (hf_cfg.get("architectures") or [])


def export_classifier(ckpt_dir: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write a directory that `transformers.GPT2ForSequenceClassification.from_pretrained` loads as it is."""
    from gptkit.classifier import Classifier
    from gptkit.interop.hf import config_to_hf, copy_tokenizer_files, state_to_hf

    clf = Classifier.load(ckpt_dir)
    spec = clf.spec
    if spec.kind not in ("classification", "entailment"):
        raise InteropError(
            f"{ckpt_dir}: a {spec.kind} model reads several rows per input; HF's GPT2ForSequenceClassification "
            "scores one row (only classification and entailment models export)"
        )
    gpt = clf.model.gpt
    names = [str(label) for label in spec.labels]
    if len(set(names)) != len(names):
        raise InteropError(f"{ckpt_dir}: labels {spec.labels} are not distinct as strings (HF id2label)")
    hf_cfg = config_to_hf(gpt.config)
    hf_cfg.update(
        {
            "architectures": [HF_ARCHITECTURE],
            "num_labels": len(names),
            "id2label": {str(i): name for i, name in enumerate(names)},
            "label2id": {name: i for i, name in enumerate(names)},
            "pad_token_id": spec.pad_id,
            SECTION: spec.to_dict(),
        }
    )
    state = state_to_hf(gpt)
    state["score.weight"] = clf.model.score.weight.detach().cpu().contiguous()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    save_file(state, str(out / "model.safetensors"), metadata={"format": "pt"})
    (out / "config.json").write_text(json.dumps(hf_cfg, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    copy_tokenizer_files(clf.directory, out)
    if (clf.directory / GPTKIT_TOKENIZER_FILE).is_file():  # the exact tokenizer (char kinds too) for import
        shutil.copyfile(clf.directory / GPTKIT_TOKENIZER_FILE, out / GPTKIT_TOKENIZER_FILE)
    return out


def import_classifier(src: Path, hf_cfg: dict[str, Any], out_dir: str | os.PathLike) -> Path:
    """A gptkit classifier directory from an exported HF GPT2ForSequenceClassification directory."""
    from gptkit.checkpoint import load_state_checked, model_state_for_saving
    from gptkit.interop.hf import config_from_hf, copy_tokenizer_files, read_hf_state, state_from_hf
    from gptkit.model import GPT
    from gptkit.tokenizer import Tokenizer
    from gptkit.train.finetune_model import ClassifierSpec, write_classifier

    cfg_path = src / "config.json"
    if SECTION not in hf_cfg:
        raise InteropError(
            f"{cfg_path}: a {HF_ARCHITECTURE} without a {SECTION!r} section (not written by gptkit export-hf), "
            "so its input transform tokens are unknown"
        )
    spec = ClassifierSpec.from_dict(hf_cfg[SECTION], source=f"{cfg_path}: {SECTION}")
    config = config_from_hf(hf_cfg, source=str(cfg_path))
    hf_state, weights_source = read_hf_state(src)
    score = hf_state.pop("score.weight", None)
    if score is None or tuple(score.shape) != (spec.n_out, config.n_embd):
        shape = None if score is None else tuple(score.shape)
        raise InteropError(f"{weights_source}: score.weight has shape {shape}, expected {(spec.n_out, config.n_embd)}")
    state = state_from_hf(hf_state, config, weights_source)
    gpt = GPT(config)
    load_state_checked(gpt, {k: v.float() for k, v in state.items()}, source=weights_source)
    full = {f"gpt.{k}": v for k, v in model_state_for_saving(gpt).items()}
    full["score.weight"] = score.float()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    copy_tokenizer_files(src, out)
    if (src / GPTKIT_TOKENIZER_FILE).is_file():
        shutil.copyfile(src / GPTKIT_TOKENIZER_FILE, out / GPTKIT_TOKENIZER_FILE)
    write_classifier(out, config, spec, full, Tokenizer.load(out))
    return out


__all__ = ["export_classifier", "import_classifier", "is_classifier_dir", "is_hf_classifier"]
