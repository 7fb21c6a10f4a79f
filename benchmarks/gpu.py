"""Issue 17 in one call: GPU training throughput, time to a target loss and decoding speed, peers in one run.

    python benchmarks/gpu.py --nanogpt /path/to/nanoGPT     # on an H100 / H200 (budget: under 8 minutes)
    python benchmarks/gpu.py --smoke                        # every part on the CPU, tiny shapes (~1 minute)

train: GPT-2 124M, batch 12 x 1024, bf16 autocast, torch.compile, fused AdamW, random tokens, the same hand
    loop for gptkit's GPT (with gptkit's build_optimizer), HF GPT2LMHeadModel (sdpa) and nanoGPT's model.py
    (imported from --nanogpt DIR; skipped with a note without it). tokens/s over the timed steps (after
    warm-up, compilation excluded); MFU = tokens/s x gptkit.model_info.train_flops_per_token / the device's
    peak (gptkit.train.metrics.peak_flops); peak memory allocated.
shakespeare: nanoGPT's shakespeare_char GPU settings (benchmarks/train_gpu.py SHAKESPEARE: 6 x 384, block
    256, batch 64) through gptkit.train.trainer.train, compiled; seconds from before the model is built to
    the first evaluation with val loss <= 1.47. Capped by --shakespeare-cap seconds (train.time_budget_s;
    with a budget gptkit's schedule runs over the time, see docs/training.md).
decode: GPT-2 124M bf16 random weights, prompt 16, 256 new tokens, greedy, batch 1 and 16: gptkit.generate
    with the static cache as a CUDA graph and eager, HF generate; tokens/s (median of interleaved repeats,
    first call excluded) and the fraction of the weight-read bound (batch x bandwidth / weight bytes per
    step), the bandwidth measured here with a large device-to-device copy.

Each part runs in try/except: an error is recorded in the JSON and the next part runs. The JSON
(benchmarks/results/gpu.json; --smoke: gpu_smoke.json) is rewritten after every part.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
RESULTS = ROOT / "benchmarks" / "results"


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def machine(device: str) -> dict:
    def run(cmd: list[str]) -> str | None:
        try:
            return subprocess.run(cmd, capture_output=True, text=True, check=True, cwd=ROOT).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return None

    name = driver = None
    if device == "cuda":
        name = torch.cuda.get_device_name()
        driver = run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"])
    return {
        "device": name or "CPU (smoke run, not a measurement)",
        "driver": driver,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "commit": run(["git", "rev-parse", "HEAD"]),
    }


# ---- part 1: training throughput -----------------------------------------------------------------------


def nanogpt_model(directory: Path, cfg):
    """nanoGPT's GPT from DIR/model.py, shaped like the gptkit config (nothing of it copied here)."""
    path = directory / "model.py"
    if not path.is_file():
        raise FileNotFoundError(f"--nanogpt {directory}: model.py not found")
    spec = importlib.util.spec_from_file_location("nanogpt_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    conf = module.GPTConfig(
        block_size=cfg.block_size, vocab_size=cfg.vocab_size, n_layer=cfg.n_layer, n_head=cfg.n_head,
        n_embd=cfg.n_embd, dropout=0.0, bias=True,
    )  # fmt: skip
    return module.GPT(conf)


def train_peer(name: str, model, cfg, args) -> dict:
    """The timed loop every peer goes through: forward+loss under autocast, backward, clip, optimizer step."""
    from gptkit.model_info import train_flops_per_token
    from gptkit.train.config import TrainConfig
    from gptkit.train.metrics import peak_flops
    from gptkit.train.optim import build_optimizer

    dev, dtype = args.device, args.dtype
    model = model.to(dev).train()
    # gptkit's optimizer code for every peer: AdamW (fused on CUDA), decay on matrices only.
    opt = build_optimizer(model, TrainConfig(lr=6e-4, weight_decay=0.1, beta2=0.95), dev)
    step_model = torch.compile(model) if args.compile else model
    B, T, V = args.batch, cfg.block_size, cfg.vocab_size
    gen = torch.Generator().manual_seed(0)
    seqs = [torch.randint(0, V, (B, T + 1), generator=gen) for _ in range(4)]
    batches = [(s[:, :-1].contiguous().to(dev), s[:, 1:].contiguous().to(dev)) for s in seqs]  # (B, T) each
    if dev == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()

    def step(i: int) -> float:
        x, y = batches[i % len(batches)]
        with torch.autocast(dev, dtype=dtype, enabled=dtype != torch.float32):
            out = step_model(x, y)
        loss = out[1] if isinstance(out, tuple) else out.loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.detach()

    t0 = time.perf_counter()
    for i in range(args.warmup):
        step(i)
    sync(dev)
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for i in range(args.steps):
        loss = step(i)
    final = loss.item()  # syncs
    elapsed = time.perf_counter() - t0
    tok_s = B * T * args.steps / elapsed
    peak = peak_flops(torch.device(dev), dtype)
    return {
        "model": name,
        "tokens_per_s": round(tok_s),
        "ms_per_step": round(1000 * elapsed / args.steps, 2),
        "mfu": tok_s * train_flops_per_token(cfg) / peak if peak else None,
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if dev == "cuda" else None,
        "warmup_s": round(warm_s, 1),
        "final_loss": round(final, 3),
    }


class HFLoss(torch.nn.Module):
    """HF GPT2LMHeadModel behind forward(idx, targets) -> (logits, loss), targets already shifted."""

    def __init__(self, hf: torch.nn.Module) -> None:
        super().__init__()
        self.hf = hf

    def forward(self, idx: torch.Tensor, targets: torch.Tensor):
        logits = self.hf(input_ids=idx).logits
        return logits, F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())


def part_train(args) -> dict:
    import transformers

    from gptkit import GPT, preset
    from gptkit.interop.hf import config_to_hf

    cfg = preset("gpt2", dropout=0.0, **args.tiny)
    hf_cfg = transformers.GPT2Config(**config_to_hf(cfg))
    hf_cfg._attn_implementation = "sdpa"
    peers = {
        "gptkit": lambda: GPT(cfg),
        "HF GPT2LMHeadModel": lambda: HFLoss(transformers.GPT2LMHeadModel(hf_cfg)),
        "nanoGPT": (lambda: nanogpt_model(Path(args.nanogpt), cfg)) if args.nanogpt else None,
    }
    rows, notes = [], {}
    for name, make in peers.items():
        if make is None:
            notes[name] = "skipped: no --nanogpt DIR given"
            continue
        try:
            torch.manual_seed(0)
            rows.append(train_peer(name, make(), cfg, args))
        except Exception as e:  # one peer failing must not lose the others
            notes[name] = f"{type(e).__name__}: {e}"
            traceback.print_exc()
        if args.device == "cuda":
            torch.cuda.empty_cache()
    print(f"\ntrain: GPT-2 shape {cfg.n_layer}x{cfg.n_embd}, batch {args.batch} x {cfg.block_size}, {args.steps} steps")
    print(f"{'model':<22}{'tokens/s':>12}{'ms/step':>9}{'MFU':>8}{'peak GiB':>10}")
    for r in rows:
        mfu = f"{r['mfu']:.1%}" if r["mfu"] is not None else "-"
        print(f"{r['model']:<22}{r['tokens_per_s']:>12,}{r['ms_per_step']:>9}{mfu:>8}{r['peak_memory_gib'] or 0:>10}")
    for name, note in notes.items():
        print(f"{name}: {note}")
    ours = next((r for r in rows if r["model"] == "gptkit"), None)
    return {"rows": rows, "notes": notes, "mfu": ours["mfu"] if ours else None}


# ---- part 2: shakespeare_char time to val <= 1.47 -------------------------------------------------------


def part_shakespeare(args) -> dict:
    from gptkit.train.config import load_run_config
    from gptkit.train.metrics import read_metrics
    from gptkit.train.trainer import train
    from train_gpu import SHAKESPEARE, SMOKE_SHAKESPEARE

    text = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
    settings = [*SHAKESPEARE, f"train.max_steps={args.shakespeare_steps}", f"train.compile={str(args.compile).lower()}"]
    settings += [f"train.time_budget_s={args.shakespeare_cap}", f"data.path={json.dumps(str(text))}"]
    settings += SMOKE_SHAKESPEARE if args.smoke else []
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = train(load_run_config(None, settings), Path(tmp) / "run", quiet=True)
        total = time.perf_counter() - t0
        records = read_metrics(Path(tmp) / "run")
    # elapsed_s counts from the loop's start; the setup before it (data, model, compile) is added back.
    setup = total - max((r.get("elapsed_s", 0.0) for r in records), default=0.0)
    evals = [(r["step"], r["val_loss"], round(setup + r["elapsed_s"], 2)) for r in records if r.get("val_loss")]
    hit = next(((s, v, t) for s, v, t in evals if v <= 1.47), None)
    print(f"\nshakespeare_char: {result.step} steps, best val {result.best_val_loss:.4f}, {total:.1f} s in all")
    print(f"seconds to val <= 1.47: {hit[2] if hit else 'not reached'}" + (f" (step {hit[0]})" if hit else ""))
    return {
        "shakespeare_seconds": hit[2] if hit else None,
        "step_at_1.47": hit[0] if hit else None,
        "steps": result.step,
        "best_val_loss": result.best_val_loss,
        "total_s": round(total, 1),
        "cap_s": args.shakespeare_cap,
        "evals": evals,
    }


# ---- part 3: decoding ------------------------------------------------------------------------------------


def copy_bandwidth(device: str, mib: int) -> float:
    """Bytes/s of a large device-to-device copy (read + write counted), best of 5."""
    x = torch.empty(mib * 2**20, dtype=torch.uint8, device=device)
    y = torch.empty_like(x)
    y.copy_(x)
    best = float("inf")
    for _ in range(5):
        sync(device)
        t = time.perf_counter()
        y.copy_(x)
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * x.numel() / best


def part_decode(args) -> dict:
    import gptkit
    from generate import PROMPT_LEN, build_models, weight_bytes_per_step

    dev, N = args.device, args.new_tokens
    bandwidth = copy_bandwidth(dev, args.copy_mib)
    # --smoke: gptkit's tiny preset instead of 124M
    ours, hf = build_models("tiny" if args.smoke else "gpt2", dev, args.dtype, max(1024, PROMPT_LEN + N))
    wbytes = weight_bytes_per_step(ours)
    engines = {"gptkit eager": dict(static_cache=False)}
    if dev == "cuda":
        engines = {"gptkit graph": dict(static_cache=True), **engines}
    rows = []
    for B in (1, 16):
        prompts = torch.randint(0, ours.config.vocab_size, (B, PROMPT_LEN), generator=torch.Generator().manual_seed(B))
        idx, prompt_rows = prompts.to(dev), prompts.tolist()

        def ours_call(opts: dict, rows: list[list[int]] = prompt_rows) -> None:
            gptkit.generate(ours, rows, max_new_tokens=N, eos_token_id=None, strategy="greedy", **opts)

        calls = {label: (lambda o=o: ours_call(o)) for label, o in engines.items()}
        calls["HF generate"] = lambda idx=idx: hf.generate(
            idx, attention_mask=torch.ones_like(idx), max_new_tokens=N, min_new_tokens=N, do_sample=False,
            pad_token_id=0,
        )  # fmt: skip
        times: dict[str, list[float]] = {label: [] for label in calls}
        errors = {}
        for rep in range(args.repeats + 1):  # interleaved; the first call (capture, warm-up) is not counted
            for label, call in calls.items():
                if label in errors:
                    continue
                try:
                    sync(dev)
                    t = time.perf_counter()
                    with torch.inference_mode():
                        call()
                    sync(dev)
                    if rep:
                        times[label].append(time.perf_counter() - t)
                except Exception as e:  # one engine failing must not lose the others
                    errors[label] = f"{type(e).__name__}: {e}"
                    traceback.print_exc()
        bound = B * bandwidth / wbytes
        for label, ts in times.items():
            rate = B * N / statistics.median(ts) if ts else None
            rows.append({"batch": B, "engine": label, "tokens_per_s": rate and round(rate),
                         "of_bound": rate and rate / bound, "bound_tokens_per_s": round(bound),
                         "error": errors.get(label)})  # fmt: skip
    shape = f"{ours.config.n_layer}x{ours.config.n_embd}"
    print(f"\ndecode: {shape}, {N} new tokens, bf16={args.dtype == torch.bfloat16}, copy {bandwidth / 1e9:.0f} GB/s")
    print(f"{'batch':>5}  {'engine':<14}{'tokens/s':>12}{'bound':>12}{'of bound':>10}")
    for r in rows:
        rate = f"{r['tokens_per_s']:,}" if r["tokens_per_s"] else r["error"][:40]
        share = f"{r['of_bound']:.1%}" if r["of_bound"] else "-"
        print(f"{r['batch']:>5}  {r['engine']:<14}{rate:>12}{r['bound_tokens_per_s']:>12,}{share:>10}")
    best = {B: max(r["tokens_per_s"] or 0 for r in rows if r["batch"] == B and r["engine"] != "HF generate")
            for B in (1, 16)}  # fmt: skip
    return {
        "rows": rows,
        "bandwidth_bytes_per_s": bandwidth,
        "weight_bytes_per_step": wbytes,
        "decode_b1_tok_s": best[1] or None,
        "decode_b16_tok_s": best[16] or None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--nanogpt", help="a karpathy/nanoGPT checkout (its model.py is the training peer)")
    parser.add_argument("--smoke", action="store_true", help="every part on the CPU with tiny shapes")
    parser.add_argument("--parts", default="train,shakespeare,decode", help="comma-separated subset")
    parser.add_argument("--steps", type=int, default=30, help="train: timed steps per peer")
    parser.add_argument("--warmup", type=int, default=10, help="train: untimed steps (compilation) per peer")
    parser.add_argument("--batch", type=int, default=12, help="train: sequences per step")
    parser.add_argument("--shakespeare-steps", type=int, default=2500)
    parser.add_argument("--shakespeare-cap", type=float, default=90.0, help="seconds of training at most")
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not args.smoke and not torch.cuda.is_available():
        raise SystemExit("benchmarks/gpu.py needs a CUDA GPU (or --smoke for a CPU check of the script)")
    args.device = "cpu" if args.smoke else "cuda"
    args.dtype = torch.float32 if args.smoke else torch.bfloat16
    args.compile = not args.smoke
    args.tiny, args.copy_mib = {}, 2048
    if args.smoke:
        args.tiny = dict(n_layer=1, n_head=2, n_embd=32, block_size=64)
        args.steps, args.warmup, args.batch, args.shakespeare_steps = 3, 1, 2, 20
        args.new_tokens, args.repeats, args.copy_mib = 16, 1, 64
    out = args.out or RESULTS / ("gpu_smoke.json" if args.smoke else "gpu.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    record = {**machine(args.device), "smoke": args.smoke, "mfu": None, "shakespeare_seconds": None,
              "decode_b1_tok_s": None, "decode_b16_tok_s": None}  # fmt: skip
    parts = {"train": part_train, "shakespeare": part_shakespeare, "decode": part_decode}
    for name in args.parts.split(","):
        t0 = time.perf_counter()
        try:
            detail = parts[name](args)
            for key in ("mfu", "shakespeare_seconds", "decode_b1_tok_s", "decode_b16_tok_s"):
                if key in detail:
                    record[key] = detail[key]
        except Exception as e:  # a part failing is recorded; the next runs
            traceback.print_exc()
            detail = {"error": f"{type(e).__name__}: {e}"}
        detail["part_s"] = round(time.perf_counter() - t0, 1)
        record[name] = detail
        out.write_text(json.dumps(record, indent=1) + "\n")  # partial results survive a later failure
        print(f"[{name}: {detail['part_s']} s; wrote {out}]", flush=True)


if __name__ == "__main__":
    main()
