"""Generation speed: gptkit.generate vs HF transformers' GPT2LMHeadModel.generate, same weights, same run.

    python benchmarks/generate.py              # CPU cases, and the GPU cases when CUDA is present
    python benchmarks/generate.py --cpu        # CPU only;  --gpu: GPU only;  --quick: fewer tokens

CPU: batch 1, greedy, 256 new tokens, for gpt2-size (124M) random weights and the tiny preset (context
raised to fit), float32; the gptkit model as Generator.load gives it (`cpu_decode_layout`).
GPU: gpt2 124M in bfloat16; batch 1 greedy, batch 1 and 16 sampling (top-k 50, temperature 0.8);
gptkit's static cache replayed as a CUDA graph, with and without torch.compile.

tokens/s = batch x new tokens / wall time of the whole call (prefill included), median of interleaved
repeats; ratio = gptkit / HF. "bound" is the weight-read bound of one decode step: bytes of weights read
per step / memory bandwidth (CPU: measured with a large sum; GPU: 3.35 TB/s, an H100 SXM's HBM3), times
the batch; "of bound" is the fraction of it reached. Startup (CUDA graph capture, compilation) is timed
apart and not counted. Results go to benchmarks/results/generate.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

import gptkit
from gptkit import GPT, preset
from gptkit.generation.engine import cpu_decode_layout
from gptkit.interop.hf import config_to_hf, state_to_hf

RESULTS = Path(__file__).resolve().parent / "results" / "generate.json"
H100_HBM_BYTES_PER_S = 3.35e12
PROMPT_LEN = 16


def build_models(name: str, device: str, dtype: torch.dtype, block_size: int):
    """A random-weight gptkit GPT and the HF GPT2LMHeadModel with the same weights."""
    import transformers

    torch.manual_seed(0)
    cfg = preset(name, dropout=0.0, block_size=block_size)
    ours = GPT(cfg).eval()
    hf = transformers.GPT2LMHeadModel(transformers.GPT2Config(**config_to_hf(cfg))).eval()
    missing, unexpected = hf.load_state_dict(state_to_hf(ours), strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    hf.tie_weights()
    # As Generator.load gives it: on CPU, Linear weights column-major for matrix-vector products.
    return cpu_decode_layout(ours.to(device=device, dtype=dtype)), hf.to(device=device, dtype=dtype)


def weight_bytes_per_step(model: GPT) -> int:
    """Bytes of weights one decode step reads: every matrix once; of the embeddings only the LM head
    (the position table and an untied token table are read one row per token)."""
    skip = {id(model.wpe.weight)} if hasattr(model, "wpe") else set()
    if not model.config.tie_embeddings:
        skip.add(id(model.wte.weight))
    seen, total = set(), 0
    for p in model.parameters():
        if id(p) not in seen and id(p) not in skip:
            seen.add(id(p))
            total += p.numel() * p.element_size()
    return total


def cpu_read_bandwidth() -> float:
    """Bytes/s of a sum over 512 MiB (best of 3), the rate at which a decode step can stream its weights."""
    x = torch.ones(128 * 2**20)
    best = float("inf")
    for _ in range(3):
        t = time.perf_counter()
        x.sum().item()
        best = min(best, time.perf_counter() - t)
    return x.numel() * 4 / best


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str) -> float:
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def run_case(case: dict, ours: GPT, hf, repeats: int) -> dict:
    device, B, N = case["device"], case["batch"], case["new_tokens"]
    g = torch.Generator().manual_seed(1)
    prompts = torch.randint(0, ours.config.vocab_size, (B, PROMPT_LEN), generator=g)
    idx = prompts.to(device)
    sampling = dict(top_k=50, temperature=0.8) if case["strategy"] == "sample" else {}
    hf_kw = dict(do_sample=bool(sampling), **sampling)

    def run_hf(n=N):
        with torch.inference_mode():
            out = hf.generate(
                idx,
                attention_mask=torch.ones_like(idx),
                max_new_tokens=n,
                min_new_tokens=n,
                pad_token_id=0,
                **hf_kw,
            )
        return out[:, PROMPT_LEN:].tolist()

    engines = {"gptkit": dict(static_cache=False)}
    if device.startswith("cuda"):
        engines = {"gptkit graph": dict(static_cache=True)}
        if case["compile_mode"] != "off":
            mode = True if case["compile_mode"] == "default" else case["compile_mode"]
            engines["gptkit graph+compile"] = dict(static_cache=True, compile=mode)
    runs = {}
    for label, opts in engines.items():

        def run_ours(n=N, opts=opts):
            return gptkit.generate(
                ours, prompts.tolist(), max_new_tokens=n, eos_token_id=None, seed=0, strategy=case["strategy"],
                **sampling, **opts,
            )  # fmt: skip

        runs[label] = run_ours
    # Startup: the first call of each (graph capture, compilation, HF's first-call setup); also a check
    # that greedy gives the same tokens on both sides.
    startup = {label: timed(lambda f=f: f(), device) for label, f in runs.items()}
    startup["HF"] = timed(run_hf, device)
    same = None
    if case["strategy"] == "greedy" and case["dtype"] == "float32":  # bf16 kernels may round apart
        n_check = min(N, 32)
        ref = run_hf(n_check)
        same = all(f(n_check) == ref for f in runs.values())
    times = {label: [] for label in [*runs, "HF"]}
    for _ in range(repeats):  # interleaved, so that both sides see the same machine load
        times["HF"].append(timed(run_hf, device))
        for label, f in runs.items():
            times[label].append(timed(f, device))
    rates = {label: B * N / statistics.median(ts) for label, ts in times.items()}
    return {**case, "tokens_per_s": rates, "startup_s": startup, "greedy_tokens_match_hf": same}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu", action="store_true", help="CPU cases only")
    parser.add_argument("--gpu", action="store_true", help="GPU cases only")
    parser.add_argument("--quick", action="store_true", help="64 new tokens, 2 repeats")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument(
        "--compile-mode",
        default="default",
        help="GPU: torch.compile mode of the compiled variant ('off' skips it; e.g. max-autotune-no-cudagraphs)",
    )
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    N, repeats = (64, 2) if args.quick else (args.new_tokens, args.repeats)
    block = max(1024, PROMPT_LEN + N)
    cases = []
    if not args.gpu:
        for name in ("tiny", "gpt2"):
            cases.append(dict(model=name, device="cpu", dtype="float32", batch=1, strategy="greedy", new_tokens=N))
    if not args.cpu and torch.cuda.is_available():
        for B, strategy in ((1, "greedy"), (1, "sample"), (16, "sample")):
            cases.append(
                dict(model="gpt2", device="cuda", dtype="bfloat16", batch=B, strategy=strategy, new_tokens=N,
                     compile_mode=args.compile_mode)
            )  # fmt: skip

    bandwidth = {"cpu": cpu_read_bandwidth()} if any(c["device"] == "cpu" for c in cases) else {}
    bandwidth["cuda"] = H100_HBM_BYTES_PER_S
    results, models = [], {}
    for case in cases:
        key = (case["model"], case["device"], case["dtype"])
        if key not in models:
            models = {key: build_models(case["model"], case["device"], getattr(torch, case["dtype"]), block)}
        ours, hf = models[key]
        print(f"running {case['model']} {case['device']} batch {case['batch']} {case['strategy']} ...", flush=True)
        r = run_case(case, ours, hf, repeats)
        r["weight_bytes_per_step"] = weight_bytes_per_step(ours)
        r["bound_tokens_per_s"] = case["batch"] * bandwidth[case["device"]] / r["weight_bytes_per_step"]
        results.append(r)

    table = Table(title=f"generate: tokens/s, {N} new tokens, prompt {PROMPT_LEN} (median of {repeats})")
    for col in ("model", "device", "dtype", "batch", "strategy", "engine", "tokens/s", "HF tokens/s", "ratio",
                "bound", "of bound", "startup s"):  # fmt: skip
        table.add_column(col, justify="left" if col in ("model", "device", "dtype", "strategy", "engine") else "right")
    for r in results:
        hf_rate = r["tokens_per_s"]["HF"]
        for label, rate in r["tokens_per_s"].items():
            if label == "HF":
                continue
            table.add_row(
                r["model"], r["device"], r["dtype"], str(r["batch"]), r["strategy"], label, f"{rate:,.0f}",
                f"{hf_rate:,.0f}", f"{rate / hf_rate:.2f}x", f"{r['bound_tokens_per_s']:,.0f}",
                f"{rate / r['bound_tokens_per_s']:.0%}", f"{r['startup_s'][label]:.1f}",
            )  # fmt: skip
    Console(width=200).print(table)
    if "cpu" in bandwidth:
        print(f"CPU read bandwidth (sum over 512 MiB): {bandwidth['cpu'] / 1e9:.1f} GB/s")
    for r in results:
        if r["greedy_tokens_match_hf"] is False:
            print(f"WARNING: {r['model']} {r['device']}: greedy tokens differ from HF's")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        },
        "bandwidth_bytes_per_s": bandwidth,
        "results": results,
    }
    args.out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
