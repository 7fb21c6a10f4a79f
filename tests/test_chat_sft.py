"""Chat SFT: packing with a document mask, the loss of a packed batch, conversation files, the built-in sets."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from gptkit import GPT, ModelConfig, Tokenizer
from gptkit.data.conversations import Conversation, ConversationError, read_conversations_jsonl
from gptkit.tokenizer.chat_template import render_chat
from gptkit.train.chat_packing import chat_loss, make_batch, pack_rows, render_conversations

CHARS = "abcdefghijklmnopqrstuvwxyz ?!.\n你好是的"


@pytest.fixture(scope="module")
def tok():
    return Tokenizer.train([CHARS], vocab_size=None, kind="char")


def _conv(*turns: str, system: str | None = None) -> Conversation:
    msgs = [{"role": "system", "content": system}] if system else []
    msgs += [{"role": ("user", "assistant")[i % 2], "content": t} for i, t in enumerate(turns)]
    return Conversation(msgs)


CONVS = [
    _conv("hi", "hello there"),
    _conv("how are you?", "fine.", "sure?", "yes!", system="be nice"),
    _conv("你好", "你好是的"),
    _conv("a b c", "d e f g h"),
]


def _model(tok, block_size=64, **overrides) -> GPT:
    cfg = ModelConfig(
        vocab_size=tok.vocab_size, block_size=block_size, n_layer=2, n_head=2, n_embd=32, dropout=0.0, **overrides
    )
    model = GPT(cfg)
    with torch.no_grad():  # random LayerNorms and biases too, so no term hides at 0 or 1
        for name, p in model.named_parameters():
            p.add_(torch.randn_like(p) * (0.3 if "ln" in name else 0.05))
    return model.double().eval()


def _alone_loss(model, r) -> torch.Tensor:
    """A conversation's mean loss over its trained targets, from a plain (unpacked, causal) forward pass."""
    x = torch.tensor([r.ids[:-1]])
    y = torch.tensor(r.ids[1:])
    logits = model(x)[0]
    trained = torch.tensor(r.loss_mask[1:])
    return F.cross_entropy(logits[trained], y[trained])


@pytest.mark.parametrize("position_embedding", ["learned", "sinusoidal"])
def test_packed_rows_give_each_conversation_its_own_logits(tok, position_embedding):
    model = _model(tok, position_embedding=position_embedding)
    chats = render_conversations(tok, CONVS, 64)
    rows = pack_rows(chats, range(len(chats)), 64)
    assert len(rows) < len(chats)  # several conversations share a row
    batch = make_batch(chats, rows, 64, tok.eot_id)
    logits = model(batch["idx"], position_ids=batch["position_ids"], document_ids=batch["document_ids"])
    for b, row in enumerate(rows):
        pos = 0
        for i in row:
            n = len(chats[i].ids) - 1
            alone = model(torch.tensor([chats[i].ids[:-1]]))[0]
            torch.testing.assert_close(logits[b, pos : pos + n], alone, rtol=1e-10, atol=1e-10)
            pos += n


def test_packed_batch_loss_is_the_mean_of_each_conversation_alone(tok):
    model = _model(tok, block_size=128)
    for block in (128, 48):  # all in one row, or several rows (and the longest conversation cut to fit)
        chats = render_conversations(tok, CONVS, block)
        # A conversation cut before its first answer has nothing to train and adds nothing.
        expected = torch.stack([_alone_loss(model, r) for r in chats if any(r.loss_mask[1:])]).mean()
        for order in ([0, 1, 2, 3], [3, 1, 0, 2]):  # different neighbours
            batch = make_batch(chats, pack_rows(chats, order, block), block, tok.eot_id)
            torch.testing.assert_close(chat_loss(model, batch), expected, rtol=1e-10, atol=1e-10)
    chats = render_conversations(tok, CONVS, 64)
    expected = torch.stack([_alone_loss(model, r) for r in chats]).mean()
    # Differs from the token-weighted mean, so the test tells the two apart.
    flat = make_batch(chats, pack_rows(chats, range(4), 64), 64, tok.eot_id)
    logits = model(flat["idx"], position_ids=flat["position_ids"], document_ids=flat["document_ids"])
    token_mean = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), flat["targets"].reshape(-1), ignore_index=-100)
    assert abs(token_mean.item() - expected.item()) > 1e-4


def test_packed_loss_under_bf16_autocast_is_fp32_and_matches_fp32(tok):
    """train.dtype=bfloat16: the SFT loss under CPU autocast is computed in fp32, close to the fp32 loss."""
    model = _model(tok, block_size=64).float()
    chats = render_conversations(tok, CONVS, 64)
    batch = make_batch(chats, pack_rows(chats, range(len(chats)), 64), 64, tok.eot_id)
    with torch.no_grad():
        reference = chat_loss(model, batch)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            logits = model(batch["idx"], position_ids=batch["position_ids"], document_ids=batch["document_ids"])
            loss = chat_loss(model, batch)
    assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    assert loss.item() == pytest.approx(reference.item(), rel=2e-2)  # bf16: 8 mantissa bits, 2 layers


def test_packing_keeps_every_conversation_once_within_rows(tok):
    chats = render_conversations(tok, CONVS * 5, 40)
    rows = pack_rows(chats, range(len(chats)), 40)
    assert sorted(i for row in rows for i in row) == list(range(len(chats)))
    assert all(sum(len(chats[i].ids) - 1 for i in row) <= 40 for row in rows)
    batch = make_batch(chats, rows, 40, tok.eot_id)
    # Targets are exactly the trained tokens of each conversation (the template's mask, shifted by one).
    trained = [t for r in chats for t, m in zip(r.ids[1:], r.loss_mask[1:], strict=True) if m]
    got = [t for row in batch["targets"].tolist() for t in row if t != -100]
    assert sorted(got) == sorted(trained) and len(got) == len(trained)


def test_long_conversations_are_cut_to_one_row(tok):
    long = _conv("a" * 50, "b" * 50)
    (r,) = render_conversations(tok, [long], 32)
    assert len(r.ids) == 33 and r.ids == render_chat(tok, long.messages).ids[:33]


def test_document_ids_are_refused_with_a_cache_or_padding_mask(tok):
    model = _model(tok)
    x = torch.zeros(1, 4, dtype=torch.long)
    with pytest.raises(ValueError, match="document_ids"):
        model(x, document_ids=torch.zeros(1, 4, dtype=torch.long), attention_mask=torch.ones(1, 4))


# ---- conversation files -------------------------------------------------------------------------------


def _write(tmp_path, *records) -> str:
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


GOOD = {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]}


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        ("{not json", "not valid JSON"),
        ({"text": "x"}, 'expected an object with a "messages" list'),
        ({"messages": [{"role": "user", "content": "a"}, {"role": "robot", "content": "b"}]}, "unknown role 'robot'"),
        ({"messages": [{"role": "user", "content": ""}, {"role": "assistant", "content": "b"}]}, "empty content"),
        ({"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "b"}]}, "out of order"),
    ],
)
def test_malformed_jsonl_names_file_and_line(tmp_path, bad, message):
    path = _write(tmp_path, GOOD, "", bad)
    with pytest.raises(ConversationError, match=message) as e:
        read_conversations_jsonl(path)
    assert str(e.value).startswith(f"{path}:3: ")


def test_jsonl_reads_conversations_and_metadata(tmp_path):
    path = _write(tmp_path, GOOD, {**GOOD, "source": "mine", "label": "x"})
    convs = read_conversations_jsonl(path)
    assert [c.messages for c in convs] == [GOOD["messages"]] * 2
    assert convs[1].source == "mine" and convs[1].meta["label"] == "x"


# ---- finetune chat on the Trainer ---------------------------------------------------------------------


def test_finetune_chat_trains_records_its_base_and_resumes(tmp_path):
    from gptkit.checkpoint import read_config_json
    from gptkit.tokenizer.chat_template import CHAT_TEMPLATE
    from gptkit.train.chat_sft import finetune_chat, load_chat_config
    from tests.chat_helpers import tiny_checkpoint, write_conversations

    base = tiny_checkpoint(tmp_path / "base", chat=False)
    data = write_conversations(tmp_path / "c.jsonl")
    overrides = [
        "train.max_steps=30", "train.batch_size=4", "train.lr=3e-3", "train.warmup_steps=2",
        "train.eval_interval=15", "train.checkpoint_interval=15", "train.log_interval=5", "train.eval_steps=1",
    ]  # fmt: skip
    cfg = load_chat_config(None, [f'chat.base="{base}"', f'chat.data="{data}"', *overrides])
    result = finetune_chat(cfg, tmp_path / "run", quiet=True)
    assert result.step == 30 and result.checkpoint is not None
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    val = [r["val_loss"] for r in records if r.get("val_loss") is not None]
    assert val[-1] < 0.7 * val[0]  # it learns the answers
    meta = read_config_json(result.checkpoint)
    assert meta["chat"]["base"] == str(base.resolve()) and meta["chat"]["data"] == str(data)
    assert meta["chat"]["tokenizer_fingerprint"] == Tokenizer.load(base).fingerprint
    assert Tokenizer.load(result.checkpoint).chat_template == CHAT_TEMPLATE  # a chat model
    assert Tokenizer.load(base).chat_template is None  # the base stays a base model
    # Resume continues from the newest checkpoint to a new max_steps.
    cfg2 = load_chat_config(tmp_path / "run" / "config.toml", ["train.max_steps=35"])
    result2 = finetune_chat(cfg2, tmp_path / "run", resume=True, quiet=True)
    assert result2.step == 35


def test_batches_are_a_function_of_the_step(tmp_path):
    from gptkit.train.chat_sft import ChatSFTTask, load_chat_config
    from tests.chat_helpers import tiny_checkpoint, write_conversations

    base = tiny_checkpoint(tmp_path / "base", chat=False)
    data = write_conversations(tmp_path / "c.jsonl", repeat=3)
    cfg = load_chat_config(None, [f'chat.base="{base}"', f'chat.data="{data}"', "train.batch_size=2"])
    a, b = ChatSFTTask(cfg, log=lambda m: None), ChatSFTTask(cfg, log=lambda m: None)
    for step in (7, 0, 3):  # any order: no hidden position
        x, y = a.batch(step, 0), b.batch(step, 0)
        assert all(torch.equal(x[k], y[k]) for k in x)
    # Every training conversation is seen once per epoch (rows of epoch 0, in order).
    seen = sorted(i for r in range(a.rows_per_epoch) for i in a._epoch_rows(0)[r])
    assert seen == list(range(len(a.train_chats)))
    assert len(a.val_chats) == len(a.train_chats) // 19  # every 20th conversation validates
