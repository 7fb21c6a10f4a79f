"""`prepare`: raw text -> clean, deduplicated documents -> tokenizer -> token shards, with a report.

This module is the plan: the settings (PrepareConfig), the split plan, and the stages in order, each a set of
independent tasks (gptkit.data.tasks, gptkit.data.dedup_tasks) that gptkit.data.runner runs, resumes and
skips, on an executor (this machine's processes, or Ray: gptkit.data.ray_executor).

  plan        inputs -> input splits                                              work/plan.json
  clean       per split: normalise, drop boilerplate lines and documents, hash + MinHash signature per document,
              the kept documents' line counts (tasks are started costliest first: gptkit.data.split_costs)
  exact       per hash partition: exact duplicates
  lsh         per (band, partition): near-duplicate candidates
  dedup       one task: verification and union-find over the candidates
  documents   per split: the kept documents and the duplicates
  tokenizer   one task: train a tokenizer on the train documents, or copy one
  tokenize    per split: train / val token shards

Adding a stage: write its task in tasks.py (`task(out, item, *settings, progress=None) -> stats`, settings as
frozen dataclasses), then one `runner.run(Stage(name, task, items, settings, outputs=[...]), prev)` below at
its place in the chain, and its counts in report.py. Its hash follows from its settings and items, and the
stages after it re-run when it changes, because each stage's hash includes the one before.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

from gptkit.data import shards
from gptkit.data.clean import RULES_VERSION, CleanConfig
from gptkit.data.dedup import DedupConfig
from gptkit.data.dedup_tasks import DedupLayout, dedup_task, exact_items, exact_task, lsh_items, lsh_task
from gptkit.data.files import read_json, write_json
from gptkit.data.filters import FilterConfig
from gptkit.data.line_counts import REPEAT_MIN_DOCS, repeated_lines_task
from gptkit.data.report import build_report
from gptkit.data.runner import LOCK_NAME, Executor, LocalExecutor, Runner, Stage, digest, output_lock
from gptkit.data.sources import (
    BUILTIN_PREFIX,
    InputFile,
    InputSplit,
    default_split_bytes,
    inputs_fingerprint,
    plan_splits,
    resolve_inputs,
    total_bytes,
)
from gptkit.data.split_costs import estimate_costs
from gptkit.data.tasks import (
    CLEAN_CACHE,
    ShardConfig,
    TokenizerConfig,
    clean_task,
    documents_task,
    is_val,
    iter_documents,
    tokenize_task,
    tokenizer_task,
    work_dir,
)
from gptkit.errors import GptkitError

__all__ = ["PrepareConfig", "PrepareError", "is_val", "iter_documents", "output_lock", "prepare"]

PIPELINE_VERSION = 5  # bump when an output or intermediate format changes
EXECUTORS = ("local", "ray")


class PrepareError(GptkitError):
    """Bad prepare settings, or an output directory that belongs to something else."""


@dataclass(frozen=True)
class PrepareConfig:
    inputs: tuple[str, ...]
    out: str
    doc_per_line: bool = False
    lang: str = "auto"
    t2s: bool = False
    min_words: int = FilterConfig.min_words
    min_chars: int = FilterConfig.min_chars
    exact_dedup: bool = True
    near_dedup: bool = True
    dedup_threshold: float = DedupConfig.threshold
    val_fraction: float = 0.01
    tokenizer: str | None = None  # a directory to load the tokenizer from
    vocab_size: int | None = None  # train a tokenizer of this size on the train documents
    tokenizer_kind: str = "bpe"
    # BPE training holds counts of every distinct pre-token in memory: train on an even sample of the train
    # documents of at most this many bytes, so memory stays bounded on large corpora
    tokenizer_sample_bytes: int = TokenizerConfig.sample_bytes
    workers: int = 1
    executor: str = "local"  # local: a process pool of `workers`; ray: tasks on a Ray cluster
    ray_address: str | None = None  # ray: "auto", HOST:PORT, or None to start a cluster on this machine
    dedup_partitions: int = 1  # hash partitions of the exact and LSH dedup tasks (same output for any number)
    split_bytes: int | None = None  # default: about four splits per worker
    max_shard_tokens: int = shards.DEFAULT_MAX_TOKENS
    progress: bool = True

    def validate(self) -> None:
        if not self.inputs:
            raise PrepareError("no --input given")
        if self.lang not in ("zh", "en", "auto"):
            raise PrepareError(f"--lang must be zh, en or auto, not {self.lang!r}")
        if not 0.0 <= self.val_fraction < 1.0:
            raise PrepareError(f"--val-fraction must be in [0, 1), not {self.val_fraction}")
        if self.tokenizer and self.vocab_size:
            raise PrepareError("give --tokenizer DIR or --vocab-size N, not both")
        if self.vocab_size is not None and self.vocab_size < 1:
            raise PrepareError(f"--vocab-size must be positive, not {self.vocab_size}")
        if self.workers < 1:
            raise PrepareError(f"--workers must be at least 1, not {self.workers}")
        if not 0.0 < self.dedup_threshold <= 1.0:
            raise PrepareError(f"--dedup-threshold must be in (0, 1], not {self.dedup_threshold}")
        if self.tokenizer_sample_bytes < 1:
            raise PrepareError(f"--tokenizer-sample-mb must be positive, not {self.tokenizer_sample_bytes / 1e6}")
        if self.tokenizer_kind not in ("bpe", "char"):
            raise PrepareError(f"--tokenizer-kind must be bpe or char, not {self.tokenizer_kind!r}")
        if self.executor not in EXECUTORS:
            raise PrepareError(f"--executor must be one of {', '.join(EXECUTORS)}, not {self.executor!r}")
        if self.ray_address is not None and self.executor != "ray":
            raise PrepareError("--ray-address needs --executor ray")
        if self.dedup_partitions < 1:
            raise PrepareError(f"--dedup-partitions must be at least 1, not {self.dedup_partitions}")

    def clean_config(self) -> CleanConfig:
        return CleanConfig(
            filters=FilterConfig(lang=self.lang, min_words=self.min_words, min_chars=self.min_chars), t2s=self.t2s
        )

    def dedup_config(self) -> DedupConfig:
        return DedupConfig(exact=self.exact_dedup, near=self.near_dedup, threshold=self.dedup_threshold)

    def tokenizer_config(self) -> TokenizerConfig:
        """Only what the tokenizer task uses: a copied tokenizer does not depend on the training settings."""
        if self.tokenizer:
            return TokenizerConfig(tokenizer=str(Path(self.tokenizer).resolve()))
        return TokenizerConfig(
            vocab_size=self.vocab_size, kind=self.tokenizer_kind, sample_bytes=self.tokenizer_sample_bytes,
            val_fraction=self.val_fraction,
        )  # fmt: skip

    def shard_config(self) -> ShardConfig:
        return ShardConfig(val_fraction=self.val_fraction, max_shard_tokens=self.max_shard_tokens)

    @property
    def tokenizes(self) -> bool:
        return bool(self.tokenizer or self.vocab_size)


def _plan(cfg: PrepareConfig, out: Path, files: list[InputFile]) -> list[InputSplit]:
    """The split plan: reused when the inputs are unchanged (so --workers does not change the plan)."""
    # absolute paths: a task may run in another working directory (a Ray worker); ids and sources use the
    # names as given, so the outputs do not change
    files = [replace(f, path=str(Path(f.path).resolve())) for f in files if not _inside(f.path, out)]
    if not files:
        raise PrepareError(f"--input {' '.join(cfg.inputs)}: no input files outside --out {out}")
    fp = digest({"inputs": inputs_fingerprint(files), "doc_per_line": cfg.doc_per_line, "split": cfg.split_bytes})
    path = work_dir(out) / "plan.json"
    old = read_json(path)
    if old and old.get("fingerprint") == fp:
        return [InputSplit.from_json(s) for s in old["splits"]]
    size = cfg.split_bytes or default_split_bytes(total_bytes(files), cfg.workers)
    splits = plan_splits(files, size)
    write_json(path, {"fingerprint": fp, "split_bytes": size, "splits": [s.to_json() for s in splits]})
    return splits


def _check_out_dir(out: Path) -> None:
    if out.exists() and not out.is_dir():
        raise PrepareError(f"--out {out}: exists and is not a directory")
    made_by_us = (work_dir(out) / "plan.json").exists() or (work_dir(out) / LOCK_NAME).exists()
    if out.is_dir() and any(out.iterdir()) and not made_by_us:
        # refuse to mix our files (and our wiping of stale outputs) into somebody else's directory
        raise PrepareError(f"--out {out}: directory is not empty and was not made by `gptkit prepare`")


def _inside(path: str | Path, directory: Path) -> bool:
    p, d = Path(path).resolve(), directory.resolve()
    return p == d or d in p.parents


def _check_inputs_outside_out(cfg: PrepareConfig, out: Path) -> None:
    """An input named inside --out would be read back, rewritten or wiped by the run: refuse it. An input
    directory that holds --out is fine: the files under --out are left out of it (otherwise every re-run would
    read its own output back as new documents)."""
    for name in cfg.inputs:
        if not name.startswith(BUILTIN_PREFIX) and _inside(name, out):
            raise PrepareError(
                f"--input {name}: is inside --out {out}, which prepare writes; move it or choose another --out"
            )


def make_executor(cfg: PrepareConfig) -> Executor:
    if cfg.executor == "ray":
        try:
            from gptkit.data.ray_executor import RayExecutor
        except ImportError as e:
            raise PrepareError(f"--executor ray needs Ray: pip install 'gptkit[ray]' ({e})") from None
        try:
            return RayExecutor(cfg.ray_address, num_cpus=None if cfg.ray_address else cfg.workers)
        except ConnectionError as e:
            raise PrepareError(f"--ray-address {cfg.ray_address}: cannot join the Ray cluster ({e})") from None
    return LocalExecutor(cfg.workers)


def prepare(cfg: PrepareConfig) -> dict:
    """Run (or resume) the pipeline; returns the report (also written to OUT/report.json)."""
    cfg.validate()
    out = Path(cfg.out)
    _check_inputs_outside_out(cfg, out)
    _check_out_dir(out)
    files = resolve_inputs(list(cfg.inputs), doc_per_line=cfg.doc_per_line)  # bad inputs: refused before OUT is made
    executor = make_executor(cfg)  # before anything is written: a cluster that cannot be joined changes nothing
    with output_lock(out, error=PrepareError):
        try:
            return _prepare_locked(cfg, out, files, executor)
        finally:
            executor.close()


def _prepare_locked(cfg: PrepareConfig, out: Path, files: list[InputFile], executor: Executor) -> dict:
    for d in ("work/clean", "work/dedup", "work/state", "documents", "rejected"):
        (out / d).mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    splits = _plan(cfg, out, files)
    n_bytes = sum(s.n_bytes for s in splits)
    runner = Runner(
        out.resolve(), executor, cfg.progress and sys.stderr.isatty(),
        salt={"pipeline": PIPELINE_VERSION, "rules": RULES_VERSION},
    )  # fmt: skip
    ccfg, dcfg = cfg.clean_config(), cfg.dedup_config()
    sig = dcfg.signature_config()
    layout = DedupLayout(len(splits), cfg.dedup_partitions)
    split_items = list(range(len(splits)))
    try:
        clean, h = runner.run(
            Stage("clean", clean_task, [[i, s.to_json()] for i, s in enumerate(splits)], (ccfg, sig),
                  outputs=["work/clean/*", "rejected/docs-*", "rejected/lines-*", "work/lines/0*"],
                  weights=[s.n_bytes for s in splits],
                  costs=estimate_costs(splits)),
            prev="",
        )  # fmt: skip
    finally:
        CLEAN_CACHE.clear()  # tasks that ran in this process (one worker) leave their results behind
    # the pool stays for the later stages: a worker lets its clean cache go at its first task of another stage
    # (gptkit.data.runner.release_between_stages); a new pool cost 30-45 ms (shutting the workers down, forking)
    _, h_exact = runner.run(Stage("exact", exact_task, exact_items(sig, layout), (layout,),
                                  outputs=["work/dedup/exact-*"]), h)  # fmt: skip
    _, h_lsh = runner.run(Stage("lsh", lsh_task, lsh_items(sig, layout), (sig, layout),
                                outputs=["work/dedup/lsh-*"]), h_exact)  # fmt: skip
    _, h = runner.run(Stage("dedup", dedup_task, [0], (dcfg, layout), outputs=["work/dedup/[0-9]*.json"],
                            parallel=False), h_lsh)  # fmt: skip
    # corpus-level repeated lines (gptkit.data.line_counts): counted per split by clean_task, summed, dropped by
    # documents_task
    _, h = runner.run(Stage("repeated-lines", repeated_lines_task, [0], (len(splits), REPEAT_MIN_DOCS),
                            outputs=["work/lines/repeated*"], parallel=False), h)  # fmt: skip
    weights = [st["bytes_out"] for st in clean.stats]
    documents, h = runner.run(
        Stage("documents", documents_task, split_items,
              outputs=["documents/*", "rejected/duplicates-*", "rejected/corpus-lines-*"],
              weights=weights), h,
    )  # fmt: skip
    if cfg.tokenizes:
        if not any(st["docs"] for st in documents.stats):
            write_json(out / "report.json", build_report(cfg, runner.outcomes, splits, time.perf_counter() - t_start))
            raise PrepareError(
                f"no document survived cleaning and deduplication ({n_bytes / 1e6:.1f} MB in): nothing to tokenize; "
                f"see {out / 'report.json'} and {out / 'rejected'} for what dropped them"
            )
        source = None
        if cfg.tokenizer:
            tdir = Path(cfg.tokenizer)
            if not tdir.is_dir():
                raise PrepareError(f"--tokenizer {tdir}: not a directory")
            source = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(tdir.iterdir()) if p.is_file()]
        prev = read_json(work_dir(out) / "state" / "tokenizer.json")
        prev_files = prev["stats"][0].get("files", []) if prev and prev.get("stats") else []
        train_bytes = sum(s["bytes"] for s in documents.stats)
        _, h = runner.run(
            Stage("tokenizer", tokenizer_task, [0], (cfg.tokenizer_config(), source, train_bytes),
                  outputs=[*prev_files, "work/tokenizer"], parallel=False), h,
        )  # fmt: skip
        runner.run(
            Stage("tokenize", tokenize_task, split_items, (cfg.shard_config(),), outputs=["train_*.bin", "val_*.bin"],
                  weights=[s["bytes"] for s in documents.stats], parallel=False), h,
        )  # fmt: skip
    report = build_report(cfg, runner.outcomes, splits, time.perf_counter() - t_start)
    write_json(out / "report.json", report)
    return report
