"""`gptkit train --init-from CKPT`: a new run that starts from a checkpoint's weights, model and tokenizer."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from gptkit.checkpoint import load_model, load_model_config
from gptkit.cli import main
from gptkit.tokenizer import Tokenizer
from gptkit.train.config import load_run_config
from gptkit.train.data import text_to_shards
from gptkit.train.trainer import Trainer, train
from tests.train_helpers import TINY, one_thread, val_losses  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")
LOOP = [s for s in TINY if not s.startswith("model.")]  # a run from a checkpoint takes its model from there


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A BPE model trained a few steps on a text file: (text file, run dir, checkpoint)."""
    from tests.conftest import SHARED

    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not found")
    root = tmp_path_factory.mktemp("source")
    torch.set_num_threads(1)
    text = (SHARED / "data" / "tinyshakespeare.txt").read_text(encoding="utf-8")[:40_000]
    path = root / "text.txt"
    path.write_text(text, encoding="utf-8")
    run = root / "run"
    settings = [*TINY, "model.n_layer=2", "data.tokenizer=bpe:300", "train.max_steps=8", "train.eval_interval=8"]
    settings.append(f"data.path={json.dumps(str(path))}")
    result = train(load_run_config(None, settings), run, quiet=True)
    return path, run, result.checkpoint


def _reference_loss(ckpt, batches) -> float:
    """Mean cross-entropy of the checkpoint's model on `batches`, in float64 (independent of the Trainer)."""
    model = load_model(ckpt).double()
    with torch.no_grad():
        losses = [F.cross_entropy(model(b["idx"]).flatten(0, 1), b["targets"].flatten()).item() for b in batches]
    return sum(losses) / len(losses)


def _init_config(path, ckpt, *extra):
    return load_run_config(
        None, [*LOOP, f"data.path={json.dumps(str(path))}", f"train.init_from={json.dumps(str(ckpt))}", *extra]
    )


@pytest.mark.parametrize("via_hf", [False, True], ids=["checkpoint", "import-hf"])
def test_first_eval_equals_the_source_loss(source, tmp_path, via_hf):
    path, src_run, ckpt = source
    if via_hf:  # the same weights and tokenizer through export-hf and import-hf
        assert main(["export-hf", str(ckpt), str(tmp_path / "hf")]) == 0
        assert main(["import-hf", str(tmp_path / "hf"), str(tmp_path / "imported")]) == 0
        ckpt = tmp_path / "imported"
    run = tmp_path / "run"
    trainer = Trainer(_init_config(path, ckpt, "train.max_steps=2", "train.lr=1e-3"), run, quiet=True)
    assert trainer.model_config == load_model_config(ckpt)
    assert trainer.step == 0 and not trainer.optimizer.state  # a fresh optimizer
    reference = _reference_loss(ckpt, trainer._val_batches)
    result = trainer.run()
    first = val_losses(run)[0]
    assert first == pytest.approx(reference, rel=1e-5)
    assert first == pytest.approx(val_losses(src_run)[8], rel=1e-5)  # the source run's last evaluation
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert records[1]["step"] == 1 and records[1]["lr"] < 1e-3  # the schedule starts again with warmup
    assert Tokenizer.load(result.checkpoint).fingerprint == Tokenizer.load(src_run / "data").fingerprint
    saved = (run / "config.toml").read_text()
    assert f"init_from = {json.dumps(str(ckpt))}" in saved
    # A resumed run restores its own checkpoint (the source is not read again).
    again = train(load_run_config(run / "config.toml", ["train.max_steps=3"]), run, resume=True, quiet=True)
    assert again.step == 3


def test_cli_refusals_leave_no_run_dir(source, tmp_path, capsys):
    path, _, ckpt = source
    other = tmp_path / "other_tokenizer"
    from gptkit.train.config import DataConfig

    text_to_shards(path, other, DataConfig(path=str(path), tokenizer="bpe:280"))
    cases = [
        (["--data", str(other)], "was tokenized with another tokenizer than --init-from"),
        (["--data", str(path), "--set", "model.n_layer=3"], "model.n_layer: fixed by --init-from"),
        (["--data", str(path), "--set", "data.tokenizer=bpe:200"], "data.tokenizer: bpe:200 is not the tokenizer"),
        (["--data", str(path), "--resume"], "--init-from starts a new run"),
        (["--data", str(path), "--init-from", str(tmp_path / "missing")], "not a directory"),
    ]
    for extra, message in cases:
        run = tmp_path / "run"
        args = ["train", "--out", str(run), "--init-from", str(ckpt), *LOOP_ARGS, *extra]
        assert main(args) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err
        assert not run.exists()


LOOP_ARGS = [a for s in LOOP for a in ("--set", s)]


def test_dropout_may_change(source, tmp_path):
    path, _, ckpt = source
    trainer = Trainer(_init_config(path, ckpt, "model.dropout=0.1", "train.max_steps=1"), tmp_path / "run", quiet=True)
    assert trainer.model_config == load_model_config(ckpt).replace(dropout=0.1)
