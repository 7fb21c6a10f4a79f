"""Labelled data for fine-tuning: JSONL records (or builtin:zh-sentiment), task kinds, label sets, and the
GPT-1 input transforms (Radford et al. 2018, section 3.3) that turn a record into token rows.

Task kinds, told apart by the fields of the records (the same kind throughout a file):
    {"text", "label"}                       classification   [start] text [extract]
    {"text_a", "text_b", "label"}           entailment       [start] text_a [delim] text_b [extract]
                                            similarity       (task = "similarity") both orders, two rows:
                                                             [start] a [delim] b [extract],
                                                             [start] b [delim] a [extract]
    {"context", "choices": [...], "label": i}
                                            multiple_choice  one row per choice:
                                                             [start] context [delim] choice_k [extract]
Labels are strings or integers (one type per file); the label set is the sorted distinct labels of the
training data. A multiple-choice label is the index of the right choice; every record has the same number
of choices. A row longer than the model's context is cut to fit, the longest text first, from its end.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gptkit.errors import GptkitError

KINDS = ("classification", "entailment", "similarity", "multiple_choice")
TASKS = ("auto", *KINDS)
# The transform tokens added to the tokenizer (as special tokens: they enter only by id, never from text).
START, DELIM, EXTRACT = "<|start|>", "<|delim|>", "<|extract|>"
TRANSFORM_TOKENS = (START, DELIM, EXTRACT)
BUILTIN_SENTIMENT = "builtin:zh-sentiment"


class FinetuneDataError(GptkitError):
    """A labelled data file is missing, malformed, or does not fit the model's task."""


@dataclass(frozen=True)
class Record:
    """One labelled (or, for prediction, unlabelled) input: its texts and its label (None if absent)."""

    texts: tuple[str, ...]  # classification: (text,); pairs: (a, b); multiple choice: (context, choice_1, ...)
    label: Any = None


def kind_of_fields(obj: dict[str, Any], task: str, where: str) -> str:
    if "context" in obj or "choices" in obj:
        kind = "multiple_choice"
    elif "text_a" in obj or "text_b" in obj:
        kind = "similarity" if task == "similarity" else "entailment"
    elif "text" in obj:
        kind = "classification"
    else:
        raise FinetuneDataError(f"{where}: no text field (expected text, text_a + text_b, or context + choices)")
    if task not in ("auto", kind) and not (task == "similarity" and kind == "entailment"):
        raise FinetuneDataError(f"{where}: fields of a {kind} record, but the task is {task}")
    return kind


def _string(obj: dict[str, Any], key: str, where: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise FinetuneDataError(f"{where}: field {key!r} must be a string, got {value!r}")
    return value


def parse_record(obj: Any, kind: str, where: str, labelled: bool = True) -> Record:
    if not isinstance(obj, dict):
        raise FinetuneDataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
    if kind == "classification":
        texts: tuple[str, ...] = (_string(obj, "text", where),)
    elif kind in ("entailment", "similarity"):
        texts = (_string(obj, "text_a", where), _string(obj, "text_b", where))
    else:
        choices = obj.get("choices")
        if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
            raise FinetuneDataError(f"{where}: field 'choices' must be a list of at least 2 strings, got {choices!r}")
        texts = (_string(obj, "context", where), *choices)
    label = obj.get("label")
    if labelled:
        if label is None:
            raise FinetuneDataError(f"{where}: no 'label' field")
        if isinstance(label, bool) or not isinstance(label, (str, int)):
            raise FinetuneDataError(f"{where}: field 'label' must be a string or an integer, got {label!r}")
        if kind == "multiple_choice" and not (isinstance(label, int) and 0 <= label < len(texts) - 1):
            raise FinetuneDataError(
                f"{where}: a multiple-choice label is the index of the right choice (0 .. {len(texts) - 2}), "
                f"got {label!r}"
            )
    return Record(texts, label)


@dataclass
class LabelledData:
    kind: str
    records: list[Record]
    source: str


def read_labelled(spec: str, task: str = "auto", *, split: str = "train", labelled: bool = True) -> LabelledData:
    """Records of a JSONL file, or of builtin:zh-sentiment (`split` names its part; builtin:zh-sentiment:test
    names one explicitly). Every record must be of one kind; every problem names the file and line."""
    if spec == BUILTIN_SENTIMENT or spec.startswith(BUILTIN_SENTIMENT + ":"):
        return _builtin_sentiment(spec, task, split)
    path = Path(spec)
    if not path.is_file():
        raise FinetuneDataError(f"{spec}: no such file (expected a JSONL file or {BUILTIN_SENTIMENT})")
    records: list[Record] = []
    kind = None
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as e:
        raise FinetuneDataError(f"{path}: not UTF-8 text ({e})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{n}"
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise FinetuneDataError(f"{where}: not valid JSON ({e.msg})") from None
        if not isinstance(obj, dict):
            raise FinetuneDataError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        this = kind_of_fields(obj, task, where)
        if kind is not None and this != kind:
            raise FinetuneDataError(f"{where}: a {this} record in a file of {kind} records")
        kind = this
        records.append(parse_record(obj, kind, where, labelled))
    if kind is None:
        raise FinetuneDataError(f"{path}: holds no records")
    _check_label_types(records, kind, str(path))
    if kind == "multiple_choice":
        counts = {len(r.texts) - 1 for r in records}
        if len(counts) > 1:
            raise FinetuneDataError(f"{path}: records have different numbers of choices ({sorted(counts)})")
    return LabelledData(kind, records, str(path))


def _builtin_sentiment(spec: str, task: str, split: str) -> LabelledData:
    from gptkit.data.zh_sentiment import SPLITS, zh_sentiment

    if ":" in spec[len(BUILTIN_SENTIMENT) :]:
        split = spec[len(BUILTIN_SENTIMENT) + 1 :]
    if split not in SPLITS:
        raise FinetuneDataError(f"{spec}: unknown split {split!r} (known: {', '.join(SPLITS)})")
    if task not in ("auto", "classification"):
        raise FinetuneDataError(f"{spec}: a classification set, but the task is {task}")
    rows = zh_sentiment()[split]
    return LabelledData("classification", [Record((r.text,), r.label) for r in rows], f"{BUILTIN_SENTIMENT}:{split}")


def _check_label_types(records: list[Record], kind: str, source: str) -> None:
    if kind == "multiple_choice":
        return
    types = {type(r.label) for r in records if r.label is not None}
    if len(types) > 1:
        raise FinetuneDataError(f"{source}: labels mix strings and integers; use one type")


def label_set(data: LabelledData) -> list[Any]:
    """The sorted distinct labels (None for multiple choice, whose label is a choice index)."""
    if data.kind == "multiple_choice":
        return []
    labels = sorted({r.label for r in data.records})
    if len(labels) < 2:
        raise FinetuneDataError(f"{data.source}: needs at least 2 distinct labels, found {labels}")
    return labels


# ---- transforms -------------------------------------------------------------------------------
@dataclass(frozen=True)
class TransformTokens:
    start: int
    delim: int
    extract: int

    def to_dict(self) -> dict[str, int]:
        return {"start": self.start, "delim": self.delim, "extract": self.extract}


def fit_segments(segments: list[list[int]], budget: int) -> list[list[int]]:
    """Cut the segments so their lengths add up to at most `budget`: the longest first, from its end
    (ties: the earliest), one token at a time, so the shorter texts keep as much as they can."""
    lengths = [len(s) for s in segments]
    excess = sum(lengths) - budget
    while excess > 0:
        i = max(range(len(lengths)), key=lambda k: (lengths[k], -k))
        lengths[i] -= 1
        excess -= 1
    return [s[:n] for s, n in zip(segments, lengths, strict=True)]


def build_rows(kind: str, encoded: list[list[int]], tokens: TransformTokens, max_len: int) -> list[list[int]]:
    """The token rows a record becomes (see the module docstring); `encoded` holds its texts' token ids."""
    s, d, e = tokens.start, tokens.delim, tokens.extract
    if kind == "classification":
        (text,) = fit_segments([encoded[0]], max_len - 2)
        return [[s, *text, e]]
    if kind in ("entailment", "similarity"):
        a, b = fit_segments(encoded[:2], max_len - 3)
        rows = [[s, *a, d, *b, e]]
        if kind == "similarity":
            rows.append([s, *b, d, *a, e])
        return rows
    rows = []
    for choice in encoded[1:]:
        context, answer = fit_segments([encoded[0], choice], max_len - 3)
        rows.append([s, *context, d, *answer, e])
    return rows


def rows_per_record(kind: str, n_choices: int = 0) -> int:
    return {"classification": 1, "entailment": 1, "similarity": 2}.get(kind, n_choices)
