"""GPT-1 fine-tuning (gptkit.train.finetune): transforms, the L2 + lambda L1 objective, the task heads, the
CLI (`gptkit finetune classify`, `gptkit eval classify`), resume, and the Classifier API. Tiny models, seconds."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from gptkit.checkpoint import load_model, read_config_json, save_model
from gptkit.classifier import Classifier
from gptkit.cli import main
from gptkit.config import ModelConfig
from gptkit.eval.classify import classification_scores
from gptkit.model import GPT
from gptkit.tokenizer import Tokenizer
from gptkit.train.checkpoint import latest_checkpoint
from gptkit.train.finetune import ClassifierModel, build_task, collate, load_finetune_config
from gptkit.train.finetune_data import TransformTokens, build_rows, fit_segments

GOOD, BAD = ["great", "fine", "love", "nice"], ["awful", "poor", "hate", "bad"]
FILLER = ["the", "item", "was", "it", "so"]


def review(rng: random.Random, label: str) -> str:
    words = GOOD if label == "good" else BAD
    return " ".join(rng.choice(words + FILLER) for _ in range(rng.randint(3, 8)))


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A base checkpoint (tiny GPT, char tokenizer, random weights) and labelled JSONL files of each kind."""
    root = tmp_path_factory.mktemp("ft")
    rng = random.Random(0)
    rows = [{"text": review(rng, lab), "label": lab} for lab in (rng.choice(["good", "bad"]) for _ in range(240))]
    write = lambda name, recs: (root / name).write_text("".join(json.dumps(r) + "\n" for r in recs))  # noqa: E731
    write("train.jsonl", rows[:200])
    write("val.jsonl", rows[200:])
    write("pairs.jsonl", [{"text_a": r["text"], "text_b": "ok", "label": r["label"]} for r in rows[:40]])
    write(
        "choices.jsonl",
        [{"context": "pick", "choices": [r["text"], "so so", "item"], "label": i % 3} for i, r in enumerate(rows[:40])],
    )
    tok = Tokenizer.train([r["text"] for r in rows] + ["pick ok so"], None, kind="char")
    torch.manual_seed(0)
    gpt = GPT(ModelConfig(vocab_size=tok.vocab_size, block_size=48, n_layer=2, n_head=2, n_embd=32, dropout=0.0))
    save_model(gpt, root / "base")
    tok.save(root / "base")
    return root


def settings(files: Path, data: str = "train.jsonl", *extra: str) -> list[str]:
    return [
        f"finetune.base={json.dumps(str(files / 'base'))}",
        f"finetune.data={json.dumps(str(files / data))}",
        "train.device=cpu",
        "train.batch_size=8",
        *extra,
    ]


def task_for(files: Path, tmp_path: Path, data: str = "train.jsonl", *extra: str):
    return build_task(load_finetune_config(None, settings(files, data, *extra)), tmp_path, resume=False)


# ---- transforms -------------------------------------------------------------------------------
def test_transforms_build_the_documented_layout():
    t = TransformTokens(start=100, delim=101, extract=102)
    assert build_rows("classification", [[1, 2, 3]], t, 10) == [[100, 1, 2, 3, 102]]
    assert build_rows("entailment", [[1, 2], [3]], t, 10) == [[100, 1, 2, 101, 3, 102]]
    assert build_rows("similarity", [[1, 2], [3]], t, 10) == [[100, 1, 2, 101, 3, 102], [100, 3, 101, 1, 2, 102]]
    assert build_rows("multiple_choice", [[1], [5], [6, 7]], t, 10) == [[100, 1, 101, 5, 102], [100, 1, 101, 6, 7, 102]]
    # Too long: the longest text is cut from its end first, and the row fits max_len exactly.
    assert build_rows("classification", [list(range(1, 20))], t, 6) == [[100, 1, 2, 3, 4, 102]]
    assert fit_segments([[1] * 10, [2] * 3], 8) == [[1] * 5, [2] * 3]
    assert fit_segments([[1] * 4, [2] * 4], 6) == [[1] * 3, [2] * 3]


def test_tokens_are_added_to_tokenizer_and_embedding_and_recorded(files, tmp_path):
    base_tok = Tokenizer.load(files / "base")
    task = task_for(files, tmp_path)
    old = base_tok.vocab_size
    assert task.spec.tokens == TransformTokens(old, old + 1, old + 2)
    assert task.model_config.vocab_size == old + 3 and task.tokenizer.vocab_size == old + 3
    assert task.spec.vocab_growth["base_vocab_size"] == old
    assert task.spec.vocab_growth["added"] == ["<|start|>", "<|delim|>", "<|extract|>"]
    text = "great item"
    assert task.tokenizer.encode(text) == base_tok.encode(text)  # old text keeps its ids
    model = task.build_model()
    base = load_model(files / "base")
    # New rows start from the mean of the old embedding rows; old rows are unchanged.
    wte, old_wte = model.gpt.wte.weight.detach(), base.wte.weight.detach()
    assert torch.equal(wte[:old], old_wte[:old])
    assert torch.allclose(wte[old], old_wte[:old].double().mean(0).float(), atol=1e-6)
    assert [r for r in task.train_rows[0][0][:1]] == [old] and task.train_rows[0][0][-1] == old + 2


# ---- the objective ----------------------------------------------------------------------------
def test_aux_term_is_exactly_lambda_times_the_lm_loss_on_the_same_inputs(files, tmp_path):
    with_lm = task_for(files, tmp_path / "a", "train.jsonl", "finetune.lm_weight=0.5")
    without = task_for(files, tmp_path / "b", "train.jsonl", "finetune.lm_weight=0.0")
    torch.manual_seed(1)
    model = with_lm.build_model().eval()
    batch = with_lm.batch(0, 0)
    assert torch.equal(batch["idx"], without.batch(0, 0)["idx"])
    with torch.no_grad():
        l3, l2 = with_lm.loss(model, batch), without.loss(model, batch)
        # L1 from the GPT's own next-token loss, padding ignored: an independent path through GPT.forward.
        _, l1 = model.gpt(batch["idx"], batch["targets"])
        scores, _ = model(batch["idx"], batch["extract_index"])
    assert abs((l3 - l2).item() - 0.5 * l1.item()) < 1e-6
    assert abs(l2.item() - F.cross_entropy(scores.double(), batch["labels"]).item()) < 1e-6
    # targets: the next token inside each row, -100 from the row's last token on
    row_len = int(batch["extract_index"][0]) + 1
    assert torch.equal(batch["targets"][0, : row_len - 1], batch["idx"][0, 1:row_len])
    assert (batch["targets"][0, row_len - 1 :] == -100).all()


def test_aux_lm_loss_and_its_gradients_match_the_full_logits_in_float64(files, tmp_path):
    """L1 goes through the fused head on the counted positions only; the reference is F.cross_entropy of the
    full (R, T, V) logits with ignore_index=-100, in float64: the loss and the GPT's gradients."""
    task = task_for(files, tmp_path, "train.jsonl", "finetune.lm_weight=0.5")
    torch.manual_seed(3)
    model = task.build_model().double()
    batch = task.batch(0, 0)
    assert (batch["targets"] == -100).any()  # the batch has padding to skip

    def fused() -> torch.Tensor:
        return model(batch["idx"], batch["extract_index"], batch["targets"])[1]

    def full() -> torch.Tensor:
        hidden = model.gpt(batch["idx"], output_hidden=True)
        V = model.gpt.config.vocab_size
        logits = F.linear(hidden, model.gpt.lm_head.weight)[..., :V]  # (R, T, V) in float64
        return F.cross_entropy(logits.reshape(-1, V), batch["targets"].reshape(-1), ignore_index=-100)

    grads = []
    for loss_fn in (fused, full):
        model.zero_grad()
        loss = loss_fn()
        loss.backward()
        grads.append((loss.item(), {n: p.grad.clone() for n, p in model.gpt.named_parameters() if p.grad is not None}))
    (l_fused, g_fused), (l_full, g_full) = grads
    assert abs(l_fused - l_full) < 1e-12
    assert g_fused.keys() == g_full.keys() and len(g_full) > 2
    for name in g_full:
        assert torch.allclose(g_fused[name], g_full[name], rtol=0, atol=1e-12), name


def test_bf16_autocast_losses_are_fp32_and_match_an_fp32_reference(files, tmp_path):
    """train.dtype=bfloat16 runs the task's loss under CPU autocast: matmuls in bf16, the losses in fp32."""
    task = task_for(files, tmp_path, "train.jsonl", "finetune.lm_weight=0.5")
    torch.manual_seed(2)
    model = task.build_model().eval()
    batch = task.batch(0, 0)
    with torch.no_grad():
        reference = task.loss(model, batch)
        ref_stats = task.eval_batch(model, batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            scores, _ = model(batch["idx"], batch["extract_index"])
            loss = task.loss(model, batch)
            stats = task.eval_batch(model, batch)
    assert scores.dtype == torch.bfloat16  # autocast is really on: the head ran in bf16
    assert loss.dtype == torch.float32 and all(v.dtype == torch.float32 for v in stats.values())
    # bf16 keeps 8 mantissa bits (relative step 2^-8 = 0.4%); a few layers of it: within 2%.
    assert loss.item() == pytest.approx(reference.item(), rel=2e-2)
    for key in ("clf_loss", "lm_loss"):
        assert stats[key].item() == pytest.approx(ref_stats[key].item(), rel=2e-2), key


def test_finetune_in_bf16_trains_and_keeps_fp32_weights(files, tmp_path):
    from gptkit.train.finetune import finetune_classify

    val = f"finetune.val={json.dumps(str(files / 'val.jsonl'))}"
    extra = [val, "train.dtype=bfloat16", "train.max_steps=8", "train.lr=3e-3", "train.eval_interval=8"]
    result = finetune_classify(load_finetune_config(None, [*settings(files), *extra]), tmp_path / "run", quiet=True)
    evals = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines() if "val_loss" in x]
    assert evals[-1]["step"] == 8 and evals[-1]["val_loss"] < evals[0]["val_loss"]
    ckpt = latest_checkpoint(tmp_path / "run")
    weights = {**load_file(str(ckpt / "model.safetensors")), **load_file(str(ckpt / "classifier.safetensors"))}
    assert {w.dtype for w in weights.values()} == {torch.float32}  # autocast leaves the parameters in fp32
    assert result.step == 8


def test_extract_state_is_the_last_real_token_whatever_the_padding():
    torch.manual_seed(0)
    gpt = GPT(ModelConfig(vocab_size=30, block_size=16, n_layer=1, n_head=2, n_embd=16, dropout=0.0))
    model = ClassifierModel(gpt, "classification", 3, 1, 0.0).eval()
    alone = collate([[[1, 2, 3]]], None, pad_id=0)
    padded = collate([[[1, 2, 3]], [[4, 5, 6, 7, 8, 9, 10]]], None, pad_id=0)
    with torch.no_grad():
        a, _ = model(alone["idx"], alone["extract_index"])
        b, _ = model(padded["idx"], padded["extract_index"])
    assert torch.allclose(a[0], b[0], atol=1e-6)


def test_similarity_is_order_symmetric(files, tmp_path):
    task = task_for(files, tmp_path, "pairs.jsonl", "finetune.task=similarity")
    assert task.spec.kind == "similarity"
    model = task.build_model().eval()
    rows = task.train_rows[0]
    swapped = [rows[1], rows[0]]
    a, b = collate([rows], None, task.spec.pad_id), collate([swapped], None, task.spec.pad_id)
    with torch.no_grad():
        sa, _ = model(a["idx"], a["extract_index"])
        sb, _ = model(b["idx"], b["extract_index"])
    assert sa.shape == (1, 2) and torch.allclose(sa, sb, atol=1e-6)


def test_multiple_choice_probabilities_sum_to_one_and_follow_the_choices(files, tmp_path):
    task = task_for(files, tmp_path, "choices.jsonl")
    assert task.spec.kind == "multiple_choice" and task.spec.n_choices == 3
    model = task.build_model().eval()
    rows = task.train_rows[0]
    batch = collate([rows, rows[::-1]], None, task.spec.pad_id)
    with torch.no_grad():
        scores, _ = model(batch["idx"], batch["extract_index"])
    probs = scores.softmax(-1)
    assert probs.shape == (2, 3)
    assert torch.allclose(probs.sum(-1), torch.ones(2, dtype=probs.dtype), atol=1e-6)
    assert torch.allclose(probs[0], probs[1].flip(0), atol=1e-6)  # a choice's score depends on its row only


# ---- runs -------------------------------------------------------------------------------------
def run_cli(*argv: str) -> int:
    return main(list(argv))


def test_finetune_learns_and_eval_classify_reports(files, tmp_path, capsys):
    out = tmp_path / "run"
    args = ["--base", str(files / "base"), "--data", str(files / "train.jsonl"), "--val", str(files / "val.jsonl")]
    assert run_cli("finetune", "classify", *args, "--out", str(out), "--epochs", "6", "--set", "train.lr=3e-3") == 0
    evals = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if "val_loss" in x]
    assert evals[0]["step"] == 0 and evals[-1]["step"] == 38  # 6 epochs of 200 records in batches of 32: 37.5
    assert evals[-1]["val_loss"] < evals[0]["val_loss"] and evals[-1]["val_accuracy"] >= 0.8 > evals[0]["val_accuracy"]
    trains = [
        json.loads(x)["train_loss"] for x in (out / "metrics.jsonl").read_text().splitlines() if "train_loss" in x
    ]
    assert trains[-1] < trains[0]
    ckpt = latest_checkpoint(out)
    section = read_config_json(ckpt)["classifier"]
    assert section["labels"] == ["bad", "good"] and section["task"] == "classification"
    assert set(load_file(str(ckpt / "classifier.safetensors"))) == {"score.weight"}
    load_model(ckpt)  # the GPT alone loads as any checkpoint
    capsys.readouterr()
    assert run_cli("eval", "classify", "--model", str(out), "--data", str(files / "val.jsonl"), "--json") == 0
    score = json.loads(capsys.readouterr().out)
    assert score["accuracy"] == pytest.approx(evals[-1]["val_accuracy"]) and score["records"] == 40
    clf = Classifier.load(out)
    (label, probs), (label2, _) = clf.predict(["great love nice", "awful hate poor"])
    assert (label, label2) == ("good", "bad") and sum(probs.values()) == pytest.approx(1.0)
    assert clf.encode("great") == [clf.spec.tokens.start, *clf.tokenizer.encode("great"), clf.spec.tokens.extract]


def test_finetune_resumes_exactly(files, tmp_path):
    common = [*settings(files), "train.decay_steps=12", "finetune.clf_dropout=0.1", "train.lr=1e-3"]
    from gptkit.train.finetune import finetune_classify

    finetune_classify(load_finetune_config(None, [*common, "train.max_steps=12"]), tmp_path / "a", quiet=True)
    finetune_classify(load_finetune_config(None, [*common, "train.max_steps=6"]), tmp_path / "b", quiet=True)
    saved = load_finetune_config(tmp_path / "b" / "config.toml", ["train.max_steps=12"])
    finetune_classify(saved, tmp_path / "b", resume=True, quiet=True)
    for name in ("model.safetensors", "classifier.safetensors"):
        a = load_file(str(latest_checkpoint(tmp_path / "a") / name))
        b = load_file(str(latest_checkpoint(tmp_path / "b") / name))
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_sort_chunk_keeps_each_epoch_a_permutation_and_cuts_padding(files, tmp_path):
    plain = task_for(files, tmp_path / "p")
    task = task_for(files, tmp_path / "s", "train.jsonl", "finetune.sort_chunk=2")
    n, size = len(task.train_rows), 2 * task.global_batch  # 200 records, runs of 2 batches of 8
    lengths = [len(rec[0]) for rec in task.train_rows]
    for epoch in (0, 1):
        order, base = task.epoch_order(epoch), plain.epoch_order(epoch)
        assert sorted(order.tolist()) == list(range(n))  # every record once per epoch
        for c, start in enumerate(range(0, n, size)):  # each run: the plain permutation's records, sorted
            run = order[start : start + size].tolist()
            assert sorted(run) == sorted(base[start : start + size].tolist())
            run_lengths = [lengths[i] for i in run]
            assert run_lengths == sorted(run_lengths, reverse=c % 2 == 1)

    def padded_positions(t):
        steps = range(n // t.global_batch)
        return sum(t.batch(s, 0)["idx"].numel() for s in steps)

    assert padded_positions(task) < padded_positions(plain)
    # The batch stream is still a function of (seed, step): a fresh task gives the same batches.
    again = task_for(files, tmp_path / "s2", "train.jsonl", "finetune.sort_chunk=2")
    assert all(torch.equal(task.batch(s, 0)["idx"], again.batch(s, 0)["idx"]) for s in (0, 7, 30))


def test_bad_records_are_named_and_leave_no_run(files, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "a", "label": "good"}\n{"text": 3, "label": "bad"}\n')
    out = tmp_path / "run"
    assert run_cli("finetune", "classify", "--base", str(files / "base"), "--data", str(bad), "--out", str(out)) == 2
    assert f"{bad}:2: field 'text' must be a string" in capsys.readouterr().err
    assert not out.exists()
    val = tmp_path / "val.jsonl"
    val.write_text('{"text": "a", "label": "meh"}\n')
    args = ["--base", str(files / "base"), "--data", str(files / "train.jsonl"), "--val", str(val), "--out", str(out)]
    assert run_cli("finetune", "classify", *args) == 2
    assert "label 'meh' is not one of the model's labels" in capsys.readouterr().err
    assert not out.exists()


def test_classification_scores_against_hand_counts():
    # truth/pred over labels a, b, c: confusion [[2, 1, 0], [0, 1, 0], [1, 0, 0]]
    acc, f1, confusion = classification_scores([0, 0, 0, 1, 2], [0, 0, 1, 1, 0], ["a", "b", "c"])
    assert confusion == [[2, 1, 0], [0, 1, 0], [1, 0, 0]]
    assert acc == pytest.approx(3 / 5)
    # a: P 2/3 R 2/3 F1 2/3; b: P 1/2 R 1 F1 2/3; c: 0
    assert f1 == pytest.approx((2 / 3 + 2 / 3 + 0) / 3)
