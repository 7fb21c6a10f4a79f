"""Bad invocations of the `gptkit` command, as a table: each row runs `python -m gptkit ARGV` in a separate
process and checks the exit code, words the error must contain, that no traceback is printed, and that the
refused command left every file of the workspace exactly as it was.

Adding a case is one line in CASES:

    case("export-hf {ckpt} {ckpt}", 2, "same directory"),

ARGV is split like a shell line, then each word is formatted with the workspace paths of tests/cli_workspace.py
({text} {empty} {ckpt} {ckpt2} {hf} {evil} {run} {no_embd} {no_vocab} {no_block} {tmp}), so `{ckpt}/sub` works.
The command runs with the workspace (a fresh copy per row) as its working directory. Words are matched
case-insensitively against stderr. `changes=True` allows the command to change files (for rows whose point is
only the message). A row still waiting for its fix carries `xfail="issue N item M"` (strict: it must fail
until fixed). The processes come from tests/cli_process.py (a fork server: real processes, without paying for
the torch import each time; GPTKIT_TEST_FRESH_PROCESS=1 starts `python -m gptkit` afresh for each row).
"""

from __future__ import annotations

import importlib.util
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.cli_process import CliProcesses
from tests.cli_workspace import PLACES, changed_paths, snapshot


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
    ),
    # ---- runs and resume ------------------------------------------------------------------------
    case("train --data {text} --out {run} " + TINY_TRAIN, 2, "already holds a training run", "--resume"),
    case("train --out {tmp}/new --resume", 2, "config.toml", "no run to resume"),
    case("train --out {run} --resume --config {tmp}/x.toml", 2, "--config", "--set"),
    case("train --out {run} --resume --set model.n_layer=6", 2, "model.n_layer", "resume"),
    case("train --out {run} --resume --data {empty}", 2, "data.path", "resume"),
    case("train --out {run} --resume --set train.max_steps=3", 2, "max_steps", "4"),
    case("train --out {run} --resume --set train.max_steps=8 --set train.batch_size=4", 2, "windows per step", "2"),
    # ---- checkpoints ----------------------------------------------------------------------------
    case("generate --model {tmp}/missing --prompt a", 2, "missing", "config.json"),
    case("generate --model {no_embd} --prompt a", 2, "n_embd", "missing"),
    case("generate --model {no_vocab} --prompt a", 2, "vocab_size", "missing"),
    case("generate --model {no_block} --prompt a", 2, "block_size", "missing"),
    # ---- generation and serving (issue 10 item 7: an explicit max_new_tokens that does not fit stays an error)
    case("generate --model {ckpt} --prompt a --max-new-tokens 40", 2, "max_new_tokens 40", "context of 32"),
    case("generate --model {ckpt} --prompt a --top-p 1.5", 2, "top_p", "1.5"),
    case("generate --model {ckpt} --prompt a --presence-penalty 3", 2, "presence_penalty", "[-2, 2]"),
    case("serve --model {tmp}/missing", 2, "missing", "config.json"),
    case("serve --model {ckpt} --max-batch 0", 2, "--max-batch", "0"),
    case("serve --model {ckpt} --port 70000", 2, "--port", "70000"),
    case("serve --model {ckpt} --device tpu", 2, "--device 'tpu'", "not a device"),
    case("serve --model {ckpt} --decode-cpus x-1", 2, "--decode-cpus", "not a CPU list"),
    # ---- devices --------------------------------------------------------------------------------
    case("generate --model {ckpt} --prompt a --device tpu", 2, "tpu", "device"),
    case("generate --model {ckpt} --prompt a --device cuda:x", 2, "cuda:x", "not a device"),
    case("generate --model {ckpt} --prompt a --device cuda:99", 2, "--device 'cuda:99'", "cuda"),
    case("eval lm --model {ckpt} --data {text} --device tpu", 2, "--device 'tpu'", "not a device"),
    case(
        "generate --model {ckpt} --prompt a --device cuda",
        2,
        "cuda",
        "not available",
        skip="CUDA is available here" if _cuda_available() else None,
    ),
    # ---- HF interop -----------------------------------------------------------------------------
    case("export-hf {ckpt} {ckpt}", 2, "{ckpt}", "source"),
    case("export-hf {ckpt} {ckpt}/hf", 2, "inside"),
    case("export-hf {ckpt} {ckpt2}", 2, "not empty", "--force"),
    case("import-hf {hf} {hf}", 2, "source"),
    case("import-hf {hf} {ckpt}", 2, "not empty", "--force"),
    case("import-hf {evil} {tmp}/out", 2, "pytorch_model.bin", "not a plain tensor file"),
    case("import-hf {tmp}/nowhere {tmp}/out", 2, "config.json", "not found"),
    # ---- chat -----------------------------------------------------------------------------------
    case("finetune chat --base {ckpt} --data {text} --out {tmp}/c", 2, "{text}:1: ", "not valid JSON"),
    case("finetune chat --base {ckpt} --data builtin:fr-chat --out {tmp}/c", 2, "builtin:fr-chat", "zh-chat"),
    case("finetune chat --data builtin:zh-chat --out {tmp}/c", 2, "chat.base", "--base"),
    case("finetune chat --base {tmp}/nowhere --data builtin:zh-chat --out {tmp}/c", 2, "config.json", "not found"),
    case("chat --model {tmp}/missing", 2, "missing", "config.json"),
    # ---- tokenizers -----------------------------------------------------------------------------
    case("tokenizer train --kind bpe --input {text} --out {tmp}/tok", 2, "--vocab-size"),
    case("tokenizer train --kind char --input {empty} --out {tmp}/tok", 2, "empty"),
    case(
        "tokenizer train --kind bpe --vocab-size 300 --input {empty} --out {tmp}/tok",
        2,
        "empty",
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
    # ---- finetune / eval classify (issue 11) ------------------------------------------------------
    case("finetune classify --base {ckpt} --data {tmp}/no.jsonl --out {tmp}/ft", 2, "no.jsonl", "no such file"),
    case("finetune classify --base {ckpt} --data {text} --out {tmp}/ft", 2, "{text}:1", "not valid JSON"),
    case("finetune classify --data builtin:zh-sentiment --out {tmp}/ft", 2, "finetune.base", "no base checkpoint"),
    case("finetune classify --base {tmp} --data builtin:zh-sentiment --out {tmp}/ft", 2, "not a gptkit checkpoint"),
    case("finetune classify --base {ckpt} --data builtin:zh-sentiment:dev --out {tmp}/ft", 2, "unknown split"),
    case("finetune classify --base {ckpt} --data builtin:zh-sentiment --out {tmp}/ft --lm-weight -1", 2, "lm_weight"),
    case("finetune classify --out {tmp}/ft --resume", 2, "config.toml", "no run to resume"),
    case("eval classify --model {ckpt} --data builtin:zh-sentiment", 2, "classifier", "finetune classify"),
    case("eval classify --model {tmp}/nowhere --data builtin:zh-sentiment", 2, "nowhere", "neither a model"),
]


@pytest.mark.parametrize("bad", CASES)
def test_bad_invocation(bad: Case, cli_workspace: Path, gptkit_cli: CliProcesses) -> None:
    workspace = cli_workspace
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
        changed = changed_paths(before, snapshot(workspace))
        assert not changed, f"the refused command changed {changed[:10]}"
