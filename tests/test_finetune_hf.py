"""HF interop of fine-tuned classifiers: `export-hf` -> transformers.GPT2ForSequenceClassification with the same
logits on Classifier.encode ids (CPU fp32, one row and a right-padded batch), label names in id2label / label2id,
and `import-hf` back to an identical classifier."""

from __future__ import annotations

import json

import pytest
import torch

from gptkit.checkpoint import save_model
from gptkit.classifier import Classifier
from gptkit.cli import main
from gptkit.config import ModelConfig
from gptkit.errors import InteropError
from gptkit.interop.hf import export_hf
from gptkit.model import GPT
from gptkit.tokenizer import Tokenizer
from gptkit.train.finetune import build_task, load_finetune_config

transformers = pytest.importorskip("transformers")

TEXTS = ["the item was great", "awful, I hate it", "so so", "fine fine fine and nice and great again"]


def make_classifier(root, kind_fields: str = "text"):
    """A fine-tuned-model directory with random weights everywhere (LayerNorms and biases too, so a mapping
    mistake cannot hide), built through the fine-tuning code path (base + transform tokens + head)."""
    tok = Tokenizer.train(TEXTS * 5, 300, kind="bpe")
    torch.manual_seed(0)
    gpt = GPT(ModelConfig(vocab_size=tok.vocab_size, block_size=64, n_layer=2, n_head=4, n_embd=32, dropout=0.0))
    with torch.no_grad():
        for name, p in gpt.named_parameters():
            p.add_(torch.randn_like(p) * (0.2 if "ln" in name else 0.05))
    save_model(gpt, root / "base")
    tok.save(root / "base")
    labels = ["neg", "neutral", "pos"]
    if kind_fields == "text":
        records = [{"text": t, "label": labels[i % 3]} for i, t in enumerate(TEXTS)]
    else:
        records = [{"text_a": t, "text_b": "ok", "label": labels[i % 3]} for i, t in enumerate(TEXTS)]
    (root / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    extra = ["finetune.task=similarity"] if kind_fields == "pairs" else []
    settings = [f'finetune.base="{root / "base"}"', f'finetune.data="{root / "train.jsonl"}"', "train.device=cpu"]
    task = build_task(load_finetune_config(None, [*settings, *extra]), root / "run", resume=False)
    model = task.build_model()
    with torch.no_grad():
        model.score.weight.normal_(0, 0.5)
    task.write_model({k: v.detach() for k, v in model.state_dict().items()}, root / "clf")
    return root / "clf"


def test_export_gives_hf_the_same_logits_and_label_names(tmp_path):
    clf = Classifier.load(make_classifier(tmp_path))
    out = export_hf(clf.directory, tmp_path / "hf")
    hf = transformers.GPT2ForSequenceClassification.from_pretrained(out).eval()
    assert hf.config.id2label == {0: "neg", 1: "neutral", 2: "pos"}
    assert hf.config.label2id == {"neg": 0, "neutral": 1, "pos": 2}
    want = clf.logits(TEXTS)  # (4, 3), gptkit
    rows = [clf.encode(t) for t in TEXTS]
    with torch.no_grad():
        for row, expected in zip(rows, want, strict=True):  # one row at a time
            got = hf(torch.tensor([row])).logits[0]
            assert torch.allclose(got, expected, atol=1e-5, rtol=0)
        T = max(len(r) for r in rows)
        ids = torch.tensor([r + [clf.spec.pad_id] * (T - len(r)) for r in rows])
        mask = torch.tensor([[1] * len(r) + [0] * (T - len(r)) for r in rows])
        assert len({len(r) for r in rows}) > 1  # a real padded batch
        got = hf(ids, attention_mask=mask).logits
    assert torch.allclose(got, want, atol=1e-5, rtol=0)


def test_import_back_round_trips(tmp_path, capsys):
    src = make_classifier(tmp_path)
    assert main(["export-hf", str(src), str(tmp_path / "hf")]) == 0
    assert main(["import-hf", str(tmp_path / "hf"), str(tmp_path / "back")]) == 0
    a, b = Classifier.load(src), Classifier.load(tmp_path / "back")
    assert b.spec == a.spec
    assert [b.encode(t) for t in TEXTS] == [a.encode(t) for t in TEXTS]
    assert torch.equal(a.logits(TEXTS), b.logits(TEXTS))
    assert b.predict(TEXTS) == a.predict(TEXTS)


def test_multi_row_tasks_are_refused(tmp_path):
    src = make_classifier(tmp_path, "pairs")
    with pytest.raises(InteropError, match="similarity model reads several rows"):
        export_hf(src, tmp_path / "hf")
    assert not (tmp_path / "hf").exists()
