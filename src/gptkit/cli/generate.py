"""`gptkit generate`: complete text with a checkpoint (greedy, sampling or beam search; streaming; batches)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gptkit.devices import DEVICE_HELP, resolve_device
from gptkit.errors import GptkitError
from gptkit.generation.settings import flag_fields

DTYPES = ("auto", "float32", "bfloat16", "float16")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\"}


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "generate",
        help="complete text with a checkpoint (greedy, sampling, beam search; --stream; --prompt-file)",
        description="Complete text with a gptkit checkpoint (config.json + model.safetensors + tokenizer files).",
    )
    p.add_argument("--model", required=True, metavar="DIR", help="checkpoint directory")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt", metavar="TEXT", help="the text to continue ('' starts from <|endoftext|>)")
    src.add_argument(
        "--prompt-file",
        metavar="FILE",
        help="many prompts, generated as one batch: one per line, or .jsonl with a string or "
        '{"prompt": ...} per line; output is JSON lines',
    )
    for name, options in flag_fields():  # every generation setting, defined once in GenerationSettings
        p.add_argument("--" + name.replace("_", "-"), **options, default=None)
    p.add_argument(
        "--stop", action="append", default=[], metavar="TEXT", help="stop string, not returned (repeatable; \\n ok)"
    )
    p.add_argument("--stream", action="store_true", help="print the text as it is generated")
    p.add_argument("--no-eos", action="store_true", help="do not stop at <|endoftext|>")
    p.add_argument("--no-bos", action="store_true", help="do not start the prompt with <|endoftext|>")
    p.add_argument(
        "--allow-invalid-utf8",
        action="store_true",
        help="let the model emit byte tokens that do not form characters (shown as U+FFFD); by default only "
        "tokens that keep the text valid UTF-8 are allowed",
    )
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--dtype", choices=DTYPES, default="auto", help="default: bfloat16 on CUDA, else float32")
    p.set_defaults(func=cmd_generate)


def unescape(text: str) -> str:
    r"""Turn \n, \t, \r and \\ into the characters (a shell cannot easily pass a newline)."""
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in _ESCAPES:
            out.append(_ESCAPES[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def read_prompt_file(path: str | Path) -> list[str]:
    """Prompts from a file: .jsonl (a JSON string or an object with "prompt" or "text" per line), else one
    prompt per line (\\n escapes allowed); blank lines are skipped."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise GptkitError(f"{path}: cannot be read ({e})") from None
    prompts = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        if path.suffix != ".jsonl":
            prompts.append(unescape(line))
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as e:
            raise GptkitError(f"{path}:{n}: not valid JSON ({e.msg})") from None
        if isinstance(item, dict):
            item = item.get("prompt", item.get("text"))
        if not isinstance(item, str):
            raise GptkitError(f'{path}:{n}: expected a JSON string or an object with a "prompt" string')
        prompts.append(item)
    if not prompts:
        raise GptkitError(f"{path}: has no prompts")
    return prompts


def options_from_args(args: argparse.Namespace, eos_token_id: int) -> dict:
    """The generation settings given on the command line (unset flags are left out: the defaults apply)."""
    options = {name: getattr(args, name) for name, _ in flag_fields() if getattr(args, name) is not None}
    options["eos_token_id"] = None if args.no_eos else eos_token_id
    return options


def cmd_generate(args: argparse.Namespace) -> int:
    import torch

    from gptkit.generation.text import DEFAULT_MAX_NEW_TOKENS, Generator

    device = str(resolve_device(args.device))
    dtype_name = args.dtype if args.dtype != "auto" else ("bfloat16" if device.startswith("cuda") else "float32")
    prompts = read_prompt_file(args.prompt_file) if args.prompt_file else [unescape(args.prompt)]
    if args.stream and (args.prompt_file or (args.num_return_sequences or 1) > 1):
        raise GptkitError("--stream prints one completion: use it with --prompt and one return sequence")
    generator = Generator.load(args.model, device=device, dtype=getattr(torch, dtype_name), add_bos=not args.no_bos)
    options = options_from_args(args, generator.tokenizer.eot_id)
    if options.get("max_new_tokens") is None:
        longest = max(len(generator.encode_prompt(p)) for p in prompts)
        options["max_new_tokens"] = n = generator.default_max_new_tokens([longest])
        if n < DEFAULT_MAX_NEW_TOKENS and longest < generator.model.config.block_size:
            print(
                f"note: max_new_tokens {n} (the default {DEFAULT_MAX_NEW_TOKENS}, capped: the prompt's {longest} "
                f"tokens leave {n} of the model's context of {generator.model.config.block_size})",
                file=sys.stderr,
            )
    stop = [unescape(s) for s in args.stop]
    valid_utf8 = not args.allow_invalid_utf8
    if args.stream:
        print(prompts[0], end="", flush=True)
        for piece in generator.stream(prompts[0], stop=stop, valid_utf8=valid_utf8, **options):
            print(piece, end="", flush=True)
        print()
        return 0
    texts = generator.complete_batch(prompts, stop=stop, valid_utf8=valid_utf8, **options)
    n = args.num_return_sequences or 1
    if args.prompt_file:
        for i, text in enumerate(texts):
            record = {"prompt": prompts[i // n], "completion": text}
            if n > 1:
                record["sequence"] = i % n
            print(json.dumps(record, ensure_ascii=False))
    else:
        for i, text in enumerate(texts):
            if i:
                print("-" * 40)
            print(prompts[0] + text)
    sys.stdout.flush()
    return 0
