"""The learned line classifier: its features, its numpy inference against a float64 reference and scikit-learn,
its file checks, how the cleaner applies it, and its figures on the labelled pages."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gptkit.data.boilerplate import GUARD_YIELDS_EN, MODEL_MIN_LINES, clean_lines
from gptkit.data.clean import CleanConfig, clean_document
from gptkit.data.line_features import FEATURE_NAMES, N_FEATURES, page_features
from gptkit.data.line_model import (
    BUILTIN_PATH,
    REASON_PREFIX,
    LineModel,
    LineModelError,
    load_line_model,
    parse_line_model,
)
from gptkit.errors import GptkitError
from tests.labelled import load_web_pages, score_pages

PARA_ZH = "这是一段很长的正文内容，我们在这里讨论了城市的交通问题和居民的出行方式，以及政府的应对措施。"
PARA_ZH2 = "居民们认为交通问题的根源在于道路规划，政府已经开始修建新的地铁线路，预计明年可以通车。"


def _col(name: str) -> int:
    return FEATURE_NAMES.index(name)


# --- features ---------------------------------------------------------------------------------------


def test_page_features_rows_positions_repeats_and_similarity():
    lines = ["城市交通", "", PARA_ZH, "    code = 1", "登录 注册", PARA_ZH2, "登录 注册"]
    code = [False, False, False, True, False, False, False]
    rules = [None, None, None, None, "ui-chrome", None, "ui-chrome"]
    rows, x = page_features(lines, rules, code)
    assert rows == [0, 2, 4, 5, 6]  # blank and code lines are not judged
    assert x.shape == (5, N_FEATURES) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, _col("position")], [0, 0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(x[:, _col("good")], [0, 1, 0, 1, 0])
    np.testing.assert_allclose(x[:, _col("rule_any")], [0, 0, 1, 0, 1])
    np.testing.assert_allclose(x[:, _col("repeats")], [0, 0, math.log1p(1), 0, math.log1p(1)], rtol=1e-6)
    np.testing.assert_allclose(x[:, _col("first_kept")], [1, 0, 0, 0, 0])
    np.testing.assert_allclose(x[:, _col("before_first_good")], [1, 0, 0, 0, 0])
    np.testing.assert_allclose(x[:, _col("after_last_good")], [0, 0, 0, 0, 1])
    # "城市交通": bigrams 城市 市交 交通; the paragraphs hold 城市 and 交通, not 市交 -> 2/3; a paragraph is 1
    assert x[0, _col("body_similarity")] == pytest.approx(2 / 3)
    assert x[1, _col("body_similarity")] == 1.0 and x[2, _col("body_similarity")] == 0.0
    # neighbours and the rule share of the window (2 judged lines each side, the line itself left out)
    assert x[0, _col("next_good")] == 1 and x[0, _col("prev_log_chars")] == 0
    assert x[2, _col("window_rule_share")] == pytest.approx(1 / 4)
    assert x[4, _col("window_rule_share")] == pytest.approx(1 / 2)
    chars = [len(t) for t in ("城市交通", PARA_ZH, "登录 注册", PARA_ZH2, "登录 注册")]
    np.testing.assert_allclose(x[:, _col("chars_before")], np.cumsum([0, *chars[:-1]]) / sum(chars), rtol=1e-6)
    assert (x[:, _col("page_zh")] == 1).all()


def test_page_features_of_an_empty_page():
    rows, x = page_features(["", "  "], [None, None], [False, False])
    assert rows == [] and x.shape == (0, N_FEATURES)


# --- inference --------------------------------------------------------------------------------------


def test_judge_matches_a_float64_reference():
    model = load_line_model("builtin")
    rng = np.random.default_rng(0)
    x = (model.mean + rng.normal(size=(40, N_FEATURES)) * model.scale).astype(np.float32)
    for zh in (True, False):
        drop, reasons = model.judge(x, zh)
        thr = model.threshold_zh if zh else model.threshold_en
        for r in range(len(x)):
            contrib = [
                float(model.coef[j]) * (float(x[r, j]) - float(model.mean[j])) / float(model.scale[j])
                for j in range(N_FEATURES)
            ]
            p = 1 / (1 + math.exp(-(sum(contrib) + model.intercept)))
            if abs(p - thr) > 1e-9:
                assert bool(drop[r]) == (p >= thr)
            top = max(range(N_FEATURES), key=contrib.__getitem__)
            assert reasons[r] == (FEATURE_NAMES[top] if contrib[top] > 0 else "prior")


def test_builtin_model_is_what_the_training_script_makes(tmp_path):
    pytest.importorskip("sklearn")
    from benchmarks.train_line_model import train_all

    out = tmp_path / "model.json"
    train_all(out)
    made, shipped = json.loads(out.read_text()), json.loads(BUILTIN_PATH.read_text())
    stale = "src/gptkit/data/line_model.json is stale: run python benchmarks/train_line_model.py"
    assert made["features"] == shipped["features"] and made["meta"] == shipped["meta"], stale
    for key in ("mean", "scale", "coef"):  # a solver of another scikit-learn version may differ in the last digits
        np.testing.assert_allclose(made[key], shipped[key], rtol=1e-4, atol=1e-6, err_msg=stale)
    assert made["intercept"] == pytest.approx(shipped["intercept"], rel=1e-4, abs=1e-6), stale
    for lang in ("zh", "en"):
        assert made["threshold"][lang] == pytest.approx(shipped["threshold"][lang], abs=1e-3), stale


def test_exported_logits_equal_scikit_learns():
    pytest.importorskip("sklearn")
    from benchmarks.train_line_model import Data, fit, labelled_pages, model_json
    from sklearn.linear_model import LogisticRegression

    data = Data(labelled_pages()[:60])
    idx = np.arange(len(data.y))
    params = fit(data, idx)
    model = parse_line_model(model_json(params, {"zh": 0.5, "en": 0.5}, {}), "test")
    mean, scale = params[0], params[1]
    lr = LogisticRegression(C=1.0, max_iter=5000)
    x = data.x.astype(np.float64)
    sel = idx[data.decides]  # fit sees only the rows whose verdict is the model's
    assert 0 < len(sel) < len(idx)
    lr.fit((x[sel] - mean) / scale, data.y[sel], sample_weight=data.sample_weight(sel))
    np.testing.assert_allclose(model.logits(x), lr.decision_function((x - mean) / scale), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(mean, x[sel].mean(axis=0), rtol=1e-6, atol=1e-9)


def test_model_decides_the_rows_the_cleaner_asks_it_about():
    from gptkit.data.boilerplate import model_decides

    para = "这是一段足够长的正文内容，讲述了这个城市的历史和文化，以及人们在这里的生活方式和习惯，内容完整。"
    lines = ["首页 > 新闻 > 正文", "来源：本站", "标题在这里", "副标题", para, "相关阅读", "分享到微信"]
    lines.append(para + "再来一段。")
    verdicts = clean_lines(lines)
    rows, x = page_features(lines, [v.rule for v in verdicts], [v.code for v in verdicts])
    assert [verdicts[i].rule is None for i in rows] == [False, False, True, True, True, False, False, False]
    # the title and subtitle (no rule, at most HEADING_LINES above a paragraph) are the heading guard's
    assert model_decides(verdicts, rows, x).tolist() == [True, True, False, False, True, True, True, True]
    # a title and paragraphs that no rule touched: the model is never asked
    plain = ["一个标题", para, para + "二。"]
    v2 = clean_lines(plain)
    r2, x2 = page_features(plain, [v.rule for v in v2], [v.code for v in v2])
    assert not model_decides(v2, r2, x2).any()


# --- the model file ---------------------------------------------------------------------------------


def _model_dict(**override) -> dict:
    d = json.loads(BUILTIN_PATH.read_text())
    d.update(override)
    return d


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"format": "other"}, "not a gptkit-line-model file"),
        ({"features": list(FEATURE_NAMES[:-1])}, "'features' differ"),
        ({"coef": [0.0] * (N_FEATURES - 1)}, "'coef' must be a list of"),
        ({"mean": [float("nan")] * N_FEATURES}, "'mean' holds a non-finite value"),
        ({"scale": [0.0] * N_FEATURES}, "'scale' must be positive"),
        ({"threshold": {"zh": 1.5, "en": 0.5}}, "'threshold' must be"),
        ({"intercept": "x"}, "'intercept' must be a finite number"),
    ],
)
def test_bad_model_files_are_refused_with_the_field(tmp_path, override, message):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(_model_dict(**override)))
    with pytest.raises(LineModelError, match=message) as err:
        load_line_model(str(path))
    assert str(path) in str(err.value)
    assert isinstance(err.value, GptkitError)


def test_missing_or_unreadable_model_file(tmp_path):
    with pytest.raises(LineModelError, match="line model file not found"):
        load_line_model(str(tmp_path / "none.json"))
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(LineModelError, match="cannot read the line model"):
        clean_document("标题\n" + PARA_ZH + "\n" + PARA_ZH2, CleanConfig(line_model=str(bad)))


# --- how the cleaner applies it ---------------------------------------------------------------------


def _one_feature_model(tmp_path, name: str, coef: float, intercept: float, center: float = 0.0) -> str:
    """A model that looks at one feature only (threshold 0.5: drop when coef * (x - center) + intercept >= 0)."""
    c, mean = np.zeros(N_FEATURES), np.zeros(N_FEATURES)
    c[_col(name)], mean[_col(name)] = coef, center
    m = LineModel(mean, np.ones(N_FEATURES), c, intercept, 0.5, 0.5)
    path = tmp_path / f"{name}_{coef}_{intercept}_{center}.json"  # load_line_model caches by path
    path.write_text(json.dumps(m.to_json()))
    return str(path)


def test_model_drops_with_a_reason_keeps_headings_and_rescues(tmp_path):
    short = _one_feature_model(tmp_path, "log_chars", -1.0, 0.0, math.log1p(12))  # drops lines under 12 characters
    lines = [PARA_ZH, PARA_ZH2, "茶叶品种", "绿色食品", "小标题", PARA_ZH, "分享到：微信"]
    rules = [v.rule for v in clean_lines(lines)]
    assert rules[:6] == [None] * 6
    out = clean_lines(lines, short)
    assert [v.rule for v in out][:3] == [None, None, REASON_PREFIX + "log_chars"]  # the model's reason
    # up to HEADING_LINES short lines right above a kept paragraph are its heading (and subtitle): they stay
    assert out[3].rule is None and out[4].rule is None
    assert out[6].rule == rules[6] and rules[6] is not None  # a rule's drop keeps the rule as its reason
    keep_all = _one_feature_model(tmp_path, "log_chars", 0.0, -5.0)
    rescued = clean_lines(lines, keep_all)
    assert all(v.rule is None for v in rescued)  # the model has the last word: rule drops come back
    assert rescued[6].text == lines[6]


PARA_EN = [
    "The river rose again this spring, and the farmers in the valley moved their animals to the higher fields.",
    "Most of them have done this for years, but the flood came earlier than anyone in the village remembers.",
    "The council has promised to rebuild the old embankment next summer, although it has not said how.",
]


def test_the_heading_guard_yields_to_a_sure_model_on_english_pages_only(tmp_path):
    # P(boilerplate) = sigmoid(log1p(8) - log1p(chars)), dropped from 0.1 (en) / 0.2 (zh): "Valley" 0.56,
    # "Flood warnings" 0.38, "茶叶" 0.75, "绿色食品产地" 0.56, the paragraphs under 0.09 (en) / 0.18 (zh)
    c, mean = np.zeros(N_FEATURES), np.zeros(N_FEATURES)
    c[_col("log_chars")], mean[_col("log_chars")] = -1.0, math.log1p(8)
    path = tmp_path / "short.json"
    path.write_text(json.dumps(LineModel(mean, np.ones(N_FEATURES), c, 0.0, 0.2, 0.1).to_json()))
    lines = [PARA_EN[0], PARA_EN[1], "Valley", "Flood warnings", PARA_EN[2]]
    assert [v.rule for v in clean_lines(lines)] == [None] * 5
    out = clean_lines(lines, str(path))
    assert GUARD_YIELDS_EN == 0.5
    assert out[2].rule == REASON_PREFIX + "log_chars"  # the model is sure: the guard yields
    assert [v.rule for v in out[:2] + out[3:]] == [None] * 4  # less sure: a heading above a paragraph stays
    zh = [PARA_ZH, PARA_ZH2, "茶叶", "绿色食品产地", PARA_ZH, "茶叶"]
    # the model is as sure of "茶叶" at the end as above a paragraph; on a Chinese page the guard holds there
    assert [v.rule for v in clean_lines(zh, str(path))] == [None] * 5 + [REASON_PREFIX + "log_chars"]


def test_model_never_empties_a_page_and_leaves_tiny_pages_to_the_rules(tmp_path):
    drop_all = _one_feature_model(tmp_path, "log_chars", 0.0, 5.0)
    lines = ["标题", PARA_ZH, "图片说明", PARA_ZH2]
    assert [v.rule for v in clean_lines(lines, drop_all)] == [v.rule for v in clean_lines(lines)]
    two = ["短行", PARA_ZH]
    assert MODEL_MIN_LINES > 2
    assert [v.rule for v in clean_lines(two, drop_all)] == [v.rule for v in clean_lines(two)]


def test_every_dropped_line_of_the_labelled_pages_has_a_reason():
    for page in load_web_pages("design")[:20]:
        res = clean_document("\n".join(page.lines))
        assert all(rule for _, rule, _ in res.dropped_lines), page.name


# --- figures (in-sample: these pages trained the model; the honest ones: train_line_model.py --cv) ----


def test_line_model_on_its_training_pages_beats_the_rules_and_keeps_content():
    from benchmarks.train_line_model import labelled_pages

    pages = labelled_pages()
    model, rules = score_pages(pages), score_pages(pages, CleanConfig(line_model=None))
    for lang in ("zh", "en"):
        m, r = model[lang], rules[lang]
        assert m.kept_fraction >= 0.95, f"{lang} content kept {m.kept_fraction:.4f}"
        gain = f"{lang}: {m.removed_fraction:.3f} vs rules {r.removed_fraction:.3f}"
        assert m.boilerplate_removed >= r.boilerplate_removed + 10, gain


def test_verse_is_left_to_the_rules_and_no_document_fails_for_the_model(tmp_path):
    from gptkit.data.filters import FilterConfig

    short = _one_feature_model(tmp_path, "log_chars", -1.0, 0.0, math.log1p(12))
    verse = ["山上的水往下淌", "山下的云雾往上涨", "青山不倒水不干", "普者黑会把朋友想"]
    assert [v.rule for v in clean_lines(verse, short)] == [v.rule for v in clean_lines(verse)]
    text = "\n".join([PARA_ZH, "短句一", "短句二", "短句三"])
    cfg = CleanConfig(filters=FilterConfig(min_chars=len(PARA_ZH) + 5), line_model=short)
    res = clean_document(text, cfg)  # the model's drops alone would leave it too short
    alone = clean_document(text, CleanConfig(filters=cfg.filters, line_model=None))
    assert res.text is not None and res.text == alone.text


# --- the fast feature code equals its definitions -------------------------------------------------------------


def _reference_classes(s: str) -> tuple[int, int, int, int]:
    """(Latin, digits, punctuation, symbols) by the one-character classes' findall, the features' definition."""
    import re

    from gptkit.data.filters import HAN

    punct = len(re.findall(r"[，。！？；：、,.!?;:\"'“”‘’（）()]", s))
    wordish = len(re.findall(rf"[\sA-Za-z0-9{HAN}]", s))
    return len(re.findall(r"[A-Za-z]", s)), len(re.findall(r"\d", s)), punct, len(s) - wordish - punct


def _reference_similarity(line: str, paragraphs: list[str]) -> float:
    from gptkit.data.line_features import _body_features

    body = set().union(*(_body_features(p) for p in paragraphs)) if paragraphs else set()
    f = _body_features(line)
    return len(f & body) / len(f) if f else 0.0


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.sampled_from("ab Z9٣，。:;·|的了是在和中文字 \t-’'x１") | st.characters(), max_size=200))
def test_fast_character_counts_equal_findall(s):
    from gptkit.data.line_features import FEATURE_NAMES as NAMES
    from gptkit.data.line_features import _own_features

    f = _own_features(s, None)
    visible = len(s.strip()[:160].replace(" ", "")) or 1
    latin, digits, punct, symbols = _reference_classes(s.strip()[:160])
    got = [f[NAMES.index(k)] for k in ("latin_share", "digit_share", "punct_share", "symbol_share")]
    assert got == [latin / visible, digits / visible, punct / visible, max(0, symbols) / visible]


_PAGE_CHARS = "ab Z9٣，。:;·|的了是在和中文字 \t-’'x１㐀豈\u3000"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet=st.sampled_from(_PAGE_CHARS) | st.characters(), max_size=60), min_size=1, max_size=8))
def test_class_counts_of_a_page_equal_the_patterns_per_line(prefixes):
    from gptkit.data.filters import _count
    from gptkit.data.line_features import _CLASS_COMPLEMENTS, _class_counts

    got = _class_counts(prefixes)
    if any(ord(c) > 0xFFFF for p in prefixes for c in p) or not "".join(prefixes):
        assert got is None  # counted by the patterns, line by line
        return
    assert got == [[_count(pattern, p) for pattern in _CLASS_COMPLEMENTS] for p in prefixes]


def test_page_features_are_the_same_with_the_page_counts_and_without(monkeypatch):
    import gptkit.data.line_features as lf
    from gptkit.data.normalize import normalize_text

    for page in load_web_pages("design")[:20]:
        lines = normalize_text("\n".join(page.lines))[0].split("\n")
        verdicts = clean_lines(lines)
        args = (lines, [v.rule for v in verdicts], [v.code for v in verdicts])
        rows, fast = page_features(*args)
        with monkeypatch.context() as m:
            m.setattr(lf, "_class_counts", lambda prefixes: None)
            assert page_features(*args)[0] == rows
            assert np.array_equal(page_features(*args)[1], fast)


def test_body_similarity_by_substring_equals_the_set_definition():
    from gptkit.data.context import is_good
    from gptkit.data.line_features import _body_han, _body_similarity, _body_words
    from tests.labelled import load_pages, load_web_pages

    n = 0
    for page in load_pages() + load_web_pages("design") + load_web_pages("blind"):
        paras = [t for t in page.lines if t.strip() and is_good(t.strip()[:160])]
        body_han = "\n".join(_body_han(t) for t in paras)
        body_words = " " + " ".join(w for t in paras for w in _body_words(t)) + " "
        for t in page.lines:
            if t.strip():
                assert _body_similarity(t, body_han, body_words) == _reference_similarity(t, paras), t
                n += 1
    assert n > 1000
