"""`prepare` when things go wrong around it: a killed run (its workers must not outlive it or keep the lock),
an output directory inside an input directory."""

from __future__ import annotations

import json
from pathlib import Path

from gptkit.cli import main
from gptkit.data.sources import plan_splits, read_split, resolve_inputs


def _write_corpus(path: Path, max_docs: int) -> None:
    files = resolve_inputs(["builtin:zh-news"])
    docs = [d.text for s in plan_splits(files, 1 << 30) for d in read_split(s)][:max_docs]
    path.write_text("".join(json.dumps({"text": t}, ensure_ascii=False) + "\n" for t in docs), encoding="utf-8")


def _tree(out: Path) -> dict[str, bytes]:
    """Every output file's bytes (gzip is deterministic), the work directory and the timed report left out."""
    return {
        str(p.relative_to(out)): p.read_bytes()
        for p in sorted(out.rglob("*"))
        if p.is_file() and p.relative_to(out).parts[0] != "work" and p.name != "report.json"
    }


def test_out_inside_an_input_directory_is_left_out_of_the_inputs(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    _write_corpus(data / "news.jsonl", 60)
    out = data / "prepared"
    args = ["prepare", "--input", str(data), "--out", str(out), "--workers", "1", "--no-progress"]
    assert main(args) == 0
    first = json.loads((out / "report.json").read_text())
    assert main(args) == 0  # a re-run finds documents/*.jsonl.gz, merges.txt ... under data/: not inputs
    again = json.loads((out / "report.json").read_text())
    assert again["documents"]["in"] == first["documents"]["in"] == 60
    assert again["sources"].keys() == {str(data)} and all(s["skipped"] for s in again["stages"].values())
    capsys.readouterr()
    before = _tree(out)
    inner = next((out / "documents").glob("*.jsonl.gz"))
    for bad in (str(inner), str(out)):  # a file inside --out, and --out itself: refused, nothing touched
        assert main(["prepare", "--input", bad, "--out", str(out), "--no-progress"]) == 2
        err = capsys.readouterr().err
        assert f"--input {bad}: is inside --out {out}" in err and "Traceback" not in err
    assert _tree(out) == before
