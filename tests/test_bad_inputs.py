"""Bad invocations of the `gptkit` command, as a table: each row runs `python -m gptkit ARGV` in a subprocess
and checks the exit code, words the error must contain, that no traceback is printed, and that the refused
command left every file of the workspace exactly as it was.

The processes come from tests/cli_process.py (a fork server: real processes, without paying for the torch
import each time; GPTKIT_TEST_FRESH_PROCESS=1 starts `python -m gptkit` afresh for each row).

Adding a case is one line in CASES:

    case("export-hf {ckpt} {ckpt}", 2, "same directory"),

ARGV is split like a shell line, then each word is formatted with the workspace paths below, so `{ckpt}/sub`
works. The command runs with the workspace as its working directory. Words are matched case-insensitively
against stderr. `changes=True` allows the command to change files (for rows whose point is only the message).
A row still waiting for its fix carries `xfail="issue 10 item N"` (strict: it must fail until fixed).

Workspace (a fresh copy for every row, built once per session in-process in a few seconds):
    {text}    a small English text file          {empty}   an empty file
    {ckpt}    a tiny gptkit checkpoint (char tokenizer)   {ckpt2}   another one (a non-empty destination)
    {hf}      a HF GPT-2 directory (export of ckpt)        {evil}    HF directory whose pytorch_model.bin
                                                                     pickles a foreign global
    {run}     a finished 4-step training run on {text}, checkpoints at steps 2 and 4
    {no_embd} {no_vocab} {no_block}   {ckpt} with n_embd / vocab_size / block_size removed from config.json
    {tmp}     the workspace itself (for paths that do not exist yet: {tmp}/new)
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli_process import CliProcesses


@dataclass(frozen=True)
class Case:
    argv: str
    code: int
    words: tuple[str, ...]
    changes: bool = False


def case(argv: str, code: int, *words: str, changes: bool = False, xfail: str | None = None, skip: str | None = None):
    marks = []
    if xfail:
        marks.append(pytest.mark.xfail(strict=True, reason=xfail))
    if skip:
        marks.append(pytest.mark.skipif(True, reason=skip))
    return pytest.param(Case(argv, code, tuple(words), changes), marks=marks, id=argv)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


TINY_TRAIN = "--set model.preset=tiny --set train.device=cpu --set train.sample_tokens=0"

CASES = [
    # ---- arguments and settings -----------------------------------------------------------------
    case("model info gpt5", 2, "unknown preset 'gpt5'"),
    case("train --data {text} --out {tmp}/new --set model.bogus=1", 2, "model.bogus", "unknown setting"),
    case("train --data {text} --out {tmp}/new --set train.lr=fast", 2, "train.lr", "fast"),
    case("train --data {text} --out {tmp}/new --set train.device=tpu", 2, "device", "tpu"),
    case(
        "train --data {tmp}/nowhere.txt --out {tmp}/new " + TINY_TRAIN,
        2,
        "nowhere.txt",
        "no such file",
        xfail="issue 10 item 1 (RUN_DIR is created before the data is checked)",
    ),
    # ---- runs and resume ------------------------------------------------------------------------
    case("train --data {text} --out {run} " + TINY_TRAIN, 2, "already holds a training run", "--resume"),
    case("train --out {tmp}/new --resume", 2, "config.toml", "no run to resume"),
    case("train --out {run} --resume --config {tmp}/x.toml", 2, "--config", "--set"),
    case("train --out {run} --resume --set model.n_layer=6", 2, "model.n_layer", "resume", xfail="issue 10 item 1"),
    case("train --out {run} --resume --data {empty}", 2, "data.path", "resume", xfail="issue 10 item 1"),
    case("train --out {run} --resume --set train.max_steps=3", 2, "max_steps", "4", xfail="issue 10 item 1"),
    # ---- checkpoints ----------------------------------------------------------------------------
    case("generate --model {tmp}/missing --prompt a", 2, "missing", "config.json"),
    case("generate --model {no_embd} --prompt a", 2, "n_embd", "missing", xfail="issue 10 item 10"),
    case("generate --model {no_vocab} --prompt a", 2, "vocab_size", "missing", xfail="issue 10 item 10"),
    case("generate --model {no_block} --prompt a", 2, "block_size", "missing", xfail="issue 10 item 10"),
    # ---- devices --------------------------------------------------------------------------------
    case("generate --model {ckpt} --prompt a --device tpu", 2, "tpu", "device", xfail="issue 10 item 9"),
    case(
        "generate --model {ckpt} --prompt a --device cuda",
        2,
        "cuda",
        "not available",
        xfail="issue 10 item 9",
        skip="CUDA is available here" if _cuda_available() else None,
    ),
    # ---- HF interop -----------------------------------------------------------------------------
    case("export-hf {ckpt} {ckpt}", 2, "{ckpt}", "source", xfail="issue 10 item 2"),
    case("export-hf {ckpt} {ckpt}/hf", 2, "inside", xfail="issue 10 item 2"),
    case("export-hf {ckpt} {ckpt2}", 2, "not empty", "--force", xfail="issue 10 item 2"),
    case("import-hf {hf} {hf}", 2, "source", xfail="issue 10 item 2"),
    case("import-hf {hf} {ckpt}", 2, "not empty", "--force", xfail="issue 10 item 2"),
    case("import-hf {evil} {tmp}/out", 2, "pytorch_model.bin", "not a plain tensor file", xfail="issue 10 item 8"),
    case("import-hf {tmp}/nowhere {tmp}/out", 2, "config.json", "not found"),
    # ---- tokenizers -----------------------------------------------------------------------------
    case("tokenizer train --kind bpe --input {text} --out {tmp}/tok", 2, "--vocab-size"),
    case("tokenizer train --kind char --input {empty} --out {tmp}/tok", 2, "empty"),
    case(
        "tokenizer train --kind bpe --vocab-size 300 --input {empty} --out {tmp}/tok",
        2,
        "empty",
        xfail="issue 10 item 13",
    ),
    # ---- prepare --------------------------------------------------------------------------------
    case("prepare --input {tmp} --out {tmp}", 2, "--input", "is inside --out"),  # issue 10 item 5
    case("prepare --input {text} --out {tmp}/p --ray-address auto", 2, "--ray-address needs --executor ray"),
    case("prepare --input {text} --out {tmp}/p --dedup-partitions 0", 2, "--dedup-partitions", "at least 1"),
    case(
        "prepare --input {text} --out {tmp}/p --executor ray --ray-address 127.0.0.1:1",
        2,
        "--ray-address 127.0.0.1:1",
        "cannot join",
        skip=None if importlib.util.find_spec("ray") else "ray is not installed",
    ),
]


# ---- the workspace ------------------------------------------------------------------------------
MISSING_FIELD_CHECKPOINTS = {"n_embd": "no_embd", "vocab_size": "no_vocab", "block_size": "no_block"}
TEXT = "".join(
    f"Line {i}: the quick brown fox jumps over the lazy dog, and the cat sat on the mat.\n" for i in range(300)
)


def _build_workspace(root: Path) -> None:
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
    import fractions

    torch.save({"transformer.wte.weight": fractions.Fraction(1, 3)}, evil / "pytorch_model.bin")
    for field, name in MISSING_FIELD_CHECKPOINTS.items():
        target = root / name
        shutil.copytree(root / "ckpt", target)
        cfg = json.loads((target / "config.json").read_text(encoding="utf-8"))
        del cfg["model"][field]
        (target / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    settings = [
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
    ]
    argv = ["train", "--data", str(root / "text.txt"), "--out", str(root / "run")]
    for s in settings:
        argv += ["--set", s]
    assert main(argv) == 0


PLACES = {
    "text": "text.txt",
    "empty": "empty.txt",
    "ckpt": "ckpt",
    "ckpt2": "ckpt2",
    "hf": "hf",
    "evil": "evil",
    "run": "run",
    "no_embd": "no_embd",
    "no_vocab": "no_vocab",
    "no_block": "no_block",
    "tmp": ".",
}


@pytest.fixture(scope="session")
def workspace_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bad_inputs") / "template"
    _build_workspace(root)
    return root


@pytest.fixture
def workspace(workspace_template: Path, tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    shutil.copytree(workspace_template, root, symlinks=True)
    return root


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


@pytest.fixture(scope="session")
def gptkit_cli(tmp_path_factory: pytest.TempPathFactory):
    runner = CliProcesses(tmp_path_factory.mktemp("cli_output"))
    yield runner
    runner.close()


@pytest.mark.parametrize("bad", CASES)
def test_bad_invocation(bad: Case, workspace: Path, gptkit_cli: CliProcesses) -> None:
    places = {key: str(workspace / rel) for key, rel in PLACES.items()}
    argv = [word.format(**places) for word in shlex.split(bad.argv)]
    words = [word.format(**places) for word in bad.words]
    before = snapshot(workspace)
    result = gptkit_cli.run(argv, workspace)
    output = result.stdout + result.stderr
    assert "Traceback" not in output, output
    assert result.returncode == bad.code, output
    for word in words:
        assert word.lower() in result.stderr.lower(), f"{word!r} not in stderr:\n{result.stderr}"
    if not bad.changes:
        after = snapshot(workspace)
        changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
        assert not changed, f"the refused command changed {changed[:10]}"
