"""A small workspace of files the CLI tests run against, built in-process in a few seconds (see conftest's
`cli_workspace`, a fresh copy per test). PLACES names its paths, relative to the workspace:

    text     a small English text file          empty    an empty file
    ckpt     a tiny gptkit checkpoint (char tokenizer)   ckpt2   another one (a non-empty destination)
    hf       a HF GPT-2 directory (export of ckpt)        evil    a HF directory whose pytorch_model.bin
                                                                  pickles a foreign global
    run      a finished 4-step training run on text, checkpoints at steps 2 and 4
    no_embd, no_vocab, no_block   ckpt with n_embd / vocab_size / block_size removed from config.json
    tmp      the workspace itself (for paths that do not exist yet: {tmp}/new)
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

MISSING_FIELD_CHECKPOINTS = {"n_embd": "no_embd", "vocab_size": "no_vocab", "block_size": "no_block"}
PLACES = {
    "text": "text.txt",
    "empty": "empty.txt",
    "ckpt": "ckpt",
    "ckpt2": "ckpt2",
    "hf": "hf",
    "evil": "evil",
    "run": "run",
    **{name: name for name in MISSING_FIELD_CHECKPOINTS.values()},
    "tmp": ".",
}
TEXT = "".join(
    f"Line {i}: the quick brown fox jumps over the lazy dog, and the cat sat on the mat.\n" for i in range(300)
)
# The settings of the run in the workspace (`--set` values), tiny enough to train 4 steps in about a second.
RUN_SETTINGS = (
    "model.preset=tiny",
    "model.n_embd=32",
    "model.block_size=32",
    "train.batch_size=2",
    "train.max_steps=4",
    "train.checkpoint_interval=2",
    "train.eval_interval=2",
    "train.eval_steps=1",
    "train.warmup_steps=1",
    "train.sample_tokens=0",
    "train.device=cpu",
)


def set_args(settings: tuple[str, ...] | list[str]) -> list[str]:
    return [word for s in settings for word in ("--set", s)]


def build_workspace(root: Path) -> None:
    import fractions

    import torch

    from gptkit import Tokenizer
    from gptkit.checkpoint import save_model
    from gptkit.cli import main
    from gptkit.config import preset
    from gptkit.interop.hf import export_hf
    from gptkit.model import GPT

    root.mkdir(parents=True)
    (root / "text.txt").write_text(TEXT, encoding="utf-8")
    (root / "empty.txt").write_bytes(b"")
    tok = Tokenizer.train([root / "text.txt"], vocab_size=None, kind="char")
    torch.manual_seed(0)
    model = GPT(preset("tiny", vocab_size=tok.vocab_size, block_size=32, n_embd=32))
    for name in ("ckpt", "ckpt2"):
        save_model(model, root / name)
        tok.save(root / name)
    export_hf(root / "ckpt", root / "hf")
    evil = root / "evil"
    evil.mkdir()
    shutil.copyfile(root / "hf" / "config.json", evil / "config.json")
    # A Fraction pickles as a reference to the global fractions.Fraction: not a plain tensor file.
    torch.save({"transformer.wte.weight": fractions.Fraction(1, 3)}, evil / "pytorch_model.bin")
    for field, name in MISSING_FIELD_CHECKPOINTS.items():
        shutil.copytree(root / "ckpt", root / name)
        cfg = json.loads((root / name / "config.json").read_text(encoding="utf-8"))
        del cfg["model"][field]
        (root / name / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    argv = ["train", "--data", str(root / "text.txt"), "--out", str(root / "run"), *set_args(RUN_SETTINGS)]
    assert main(argv) == 0


def snapshot(root: Path) -> dict[str, str]:
    """Every path under `root` -> the sha256 of its bytes ("dir" for a directory, the target for a link)."""
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "-> " + str(path.readlink())
        elif path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def changed_paths(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
