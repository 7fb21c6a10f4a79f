"""The cleaner's fast paths against brute-force references: each computes what its plain definition does."""

from __future__ import annotations

import itertools
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from gptkit.data import context, filters

# code points at the edges of the Han ranges (U+4D00-4DBF Han, U+4DC0-4DFF not: one UTF-16 high byte), surrogates,
# characters beyond the BMP (CJK extension B is not in HAN), ASCII and CJK punctuation
_EDGES = "".join(
    map(chr, [0x33FF, 0x3400, 0x4CFF, 0x4D00, 0x4DBF, 0x4DC0, 0x4DFF, 0x4E00, 0x9FFF, 0xA000, 0xF8FF, 0xF900, 0xFAFF,
              0xFB00, 0xD800, 0xDBFF, 0xDC00, 0xDFFF, 0x20000, 0x1F600, 0x3000, 0xFF0C, 0x41, 0x20])
)  # fmt: skip
_HAN_CHAR = re.compile(f"[{filters.HAN}]")


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(_EDGES) | st.characters(), max_size=80))
def test_short_han_count_equals_the_pattern(text):
    assert filters._count_han_short.__wrapped__(text) == len(_HAN_CHAR.findall(text))


def test_short_han_count_of_plain_and_edge_texts():
    count = filters._count_han_short.__wrapped__
    assert count("") == 0
    assert count("plain ASCII text") == 0
    assert count("中文，English 字") == 3
    assert count("\u4dbf\u4dc0\u4dff\u4e00") == 2  # the split high byte: the pattern decides
    assert count("\ud800\U00020000\uf900\ufaff\ufb00") == 2  # a lone surrogate and extension B are not Han


def _reference_features(line: str) -> set[str]:
    """The definition: bigrams of the line's basic-block Han characters (across gaps) and its content words."""
    han = [c for c in line if "\u4e00" <= c <= "\u9fff"]
    feats = {a + b for a, b in itertools.pairwise(han)}
    feats.update(
        w for w in (x.lower() for x in context._WORD.findall(line)) if len(w) >= 3 and w not in context.STOPWORDS_EN
    )
    return feats


_LINE_CHARS = "的了是在中文字词语 abc Data data the of，。-'\n㐀豈"
_lines = st.text(alphabet=st.sampled_from(_LINE_CHARS) | st.characters(), max_size=60)


@settings(max_examples=300, deadline=None)
@given(_lines)
def test_features_equal_the_per_character_definition(line):
    assert context._features(line) == _reference_features(line)


@settings(max_examples=300, deadline=None)
@given(st.lists(_lines, max_size=5), _lines)
def test_body_shares_equal_the_set_intersection(paragraphs, line):
    body = set().union(*map(_reference_features, paragraphs))
    feats = context._features(line)
    assert context._Body(paragraphs).shared(feats) == len(feats & body)


def test_body_shares_count_bigrams_within_a_paragraph_only():
    body = context._Body(["今天天气", "很好 Python programming"])
    assert body.shared({"天气", "气很"}) == 1  # "气很" spans two paragraphs: not a bigram of either
    assert body.shared({"python", "programming", "program"}) == 2  # whole words only


def test_a_stage_runs_with_the_higher_gc_threshold_and_restores_it():
    import gc

    from gptkit.data.runner import STAGE_GC_THRESHOLD, _frozen_gc

    before = gc.get_threshold()
    with _frozen_gc():
        assert gc.get_threshold() == (max(before[0], STAGE_GC_THRESHOLD), *before[1:])
    assert gc.get_threshold() == before


_ONE_LINE_TEXTS = [
    "这家店的菜很好吃，服务也不错，下次还会再来。",
    "好",
    "   ",
    "",
    "The room was clean and the staff were friendly, we would stay here again.",
    "def f(x): return x",
    "こんにちは、今日はいい天気ですね。",
    "分享到：微信 微博",
    "12345",
]


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(_ONE_LINE_TEXTS) | st.text(max_size=40),
    st.sampled_from([None, "spam", "ui-chrome"]),
    st.booleans(),
    st.sampled_from(["auto", "zh", "en"]),
)
def test_one_line_judgement_equals_the_general_one(text, rule, code, lang):
    from gptkit.data.boilerplate import LineVerdict
    from gptkit.data.clean import _judge_lines, _judge_one_line
    from gptkit.data.filters import FilterConfig
    from gptkit.data.normalize import NormalizeStats

    v = LineVerdict(0, text, rule, code)
    fc = FilterConfig(lang=lang)
    assert _judge_one_line(v, text, NormalizeStats(), fc) == _judge_lines([v], text, NormalizeStats(), fc)


def test_a_page_of_two_judged_lines_is_left_to_the_rules_without_features(monkeypatch):
    import gptkit.data.boilerplate as bp

    def no_features(*args):
        raise AssertionError("page_features computed for a page the model skips")

    lines = [
        "分享到：微信 微博 QQ空间",
        "",
        "这家店的菜很好吃，服务也不错，下次还会再来，我们一家人都很喜欢这里的环境。",
    ]
    verdicts = bp.clean_lines(lines)
    assert any(v.rule for v in verdicts)  # not an untouched article: the model would be asked
    monkeypatch.setattr(bp, "page_features", no_features)
    assert bp.apply_line_model(lines, list(verdicts), "builtin") == verdicts


_NORMALIZE_CHARS = "a中，\r\n\u2028\u0085&amp;#x4e2d;\u00c3\u00a9\ufffd\u200b\u3000１Ａ \t\u00e6\u2013"


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet=st.sampled_from(_NORMALIZE_CHARS) | st.characters(), max_size=60))
def test_normalize_skips_the_repair_steps_only_when_they_change_nothing(text):
    from gptkit.data import normalize

    fast = normalize.normalize_text(text)
    always = re.compile("")  # matches every text: the repair steps run, as before the pre-scan
    original, normalize._NEEDS_REPAIR = normalize._NEEDS_REPAIR, always
    try:
        assert normalize.normalize_text(text) == fast
    finally:
        normalize._NEEDS_REPAIR = original


_TRICKY_RECORDS = [
    b'{"text": "a", "text": "b"}',  # the last duplicate key wins in both
    b'{"text": "\\ud800 lone surrogate escape"}',  # orjson rejects it, json reads it
    b'{"text": "\\udfff\\ud800"}',
    b'{"text": "\\ud83d\\ude00 pair"}',
    b'{"text": "x", "n": NaN}',
    b'{"text": "x", "n": 123456789012345678901234567890}',  # orjson: a float, never read
    b'{"text": "x", "n": 1e400}',
    b'\xef\xbb\xbf{"text": "byte order mark"}',
    b'{"text": "invalid \xff\xfe utf-8"}',
    b'{"text": "\xed\xa0\x80 an encoded surrogate"}',
    b'{"text": "\\u0000 nul"}',
    b'{"text": "raw\ttab"}',
    b'  {"text": "spaces around"}  ',
    b'{"text": 5}',
    b'["text"]',
    b'{"text": "trailing"} x',
    b'{"text": "a",}',
    b'{"text": "x", "deep": ' + b"[" * 1010 + b"]" * 1010 + b"}",  # json: RecursionError
]


def _read_jsonl(path) -> list | str:
    from gptkit.data.sources import SourceError, plan_splits, read_split, resolve_inputs

    try:
        splits = plan_splits(resolve_inputs([str(path)]), 1 << 20)
        return [(d.id, d.text, d.n_bytes, d.bad_bytes) for s in splits for d in read_split(s)]
    except (SourceError, RecursionError) as e:
        return f"{type(e).__name__}: {e}"


def test_jsonl_records_read_with_orjson_as_with_json(tmp_path, monkeypatch):
    """Each record alone, then all good ones together: the same documents or the same error as json's path."""
    import orjson

    from gptkit.data import sources

    class _NoOrjson:
        JSONDecodeError = orjson.JSONDecodeError

        @staticmethod
        def loads(raw: bytes) -> object:
            raise orjson.JSONDecodeError("off", "", 0)

    results = {}
    for k, record in enumerate([*_TRICKY_RECORDS, None]):
        path = tmp_path / f"r{k}.jsonl"
        path.write_bytes(record + b"\n" if record else b'{"text": "one"}\n\n{"id": 3, "text": "two"}\r\n')
        fast = _read_jsonl(path)
        with monkeypatch.context() as m:
            m.setattr(sources, "orjson", _NoOrjson)
            results[record] = (fast, _read_jsonl(path))
    for record, (fast, plain) in results.items():
        if record is not None and b"deep" in record:
            assert isinstance(plain, str) and "RecursionError" in plain and isinstance(fast, list)
        else:
            assert fast == plain, record
    assert "invalid JSON in the record at byte 0" in results[_TRICKY_RECORDS[-2]][0]
    assert results[_TRICKY_RECORDS[1]][0][0][1] == "\ud800 lone surrogate escape"


def test_remembered_signatures_equal_fresh_ones(monkeypatch):
    """CleanCache.signatures: each row equals the hasher's signature of that document alone, whether computed in
    a batch, remembered from an earlier call, or too long to remember; remembered rows are not hashed again."""
    import numpy as np

    from gptkit.data import tasks
    from gptkit.data.dedup import DedupConfig, MinHasher, batch_shingles

    cfg = DedupConfig().signature_config()
    hasher = MinHasher(cfg)
    long_text = "长文档的内容各不相同，" * 120  # over CACHE_MAX_CHARS: never remembered
    first = [("今天天气很好，我们去公园散步。", "zh"), ("", "zh"), ("a short English review, fine", "en")]
    second = [first[2], ("另一条评论，质量不错。", "zh"), first[0], (long_text, "zh"), first[0]]
    cache = tasks.CleanCache()
    hashed: list[int] = []
    signatures = MinHasher.signatures

    def counted(self: MinHasher, sets: list) -> np.ndarray:
        hashed.append(len(sets))
        return signatures(self, sets)

    monkeypatch.setattr(MinHasher, "signatures", counted)
    rows = [cache.signatures(hasher, docs) for docs in (first, second)]
    assert hashed == [3, 2]  # the second call hashes only the new short text and the long one
    assert cache.signatures(hasher, [(long_text, "zh"), first[1]]).shape == (2, cfg.num_perm)
    assert hashed == [3, 2, 1]  # the long text again, the empty one remembered
    for docs, got in zip((first, second), rows, strict=True):
        for (text, lang), row in zip(docs, got, strict=True):
            alone = signatures(hasher, batch_shingles([text], [lang], cfg.ngram))[0]
            assert np.array_equal(row, alone)
