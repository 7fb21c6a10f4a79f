"""The learned line classifier over gptkit.data.line_features, the last word on every judged line of a page (the
line rules' verdicts are among its features). It has a part per page language (a page is routed by route_zh):

    model = load_line_model("builtin")        # src/gptkit/data/line_model.json (benchmarks/train_line_model.py)
    drop, reasons = model.judge(x, zh)        # x: (n, N_FEATURES) from page_features, zh = route_zh(x)

The parameters are a JSON file (no pickle; its "format" and "version" are checked, so a file of another format
version is refused): feature names (checked against FEATURE_NAMES, so a model trained on other features is
refused), then per part either a logistic regression ("kind": "logistic": per-feature mean and scale, coefficients,
intercept; one matrix-vector product per page) or gradient-boosted trees ("kind": "trees", gptkit.data.line_trees),
and its decision threshold, chosen on the training folds for >= the target share of content characters kept (a
dropped paragraph is the worse error). The shipped model: the regression for Chinese pages, trees for English.

A line the model drops records why: the rule that had dropped it, or "line-model:<feature>", the feature that
pushed it furthest towards boilerplate (a regression: its coefficient times its standardised value; trees: its
splits' moves along the line's paths; "prior" when none did).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from gptkit.data.line_features import FEATURE_NAMES
from gptkit.data.line_trees import TreeError, TreeModel, tree_model
from gptkit.errors import GptkitError

BUILTIN_PATH = Path(__file__).with_name("line_model.json")
FORMAT = "gptkit-line-model"
FORMAT_VERSION = 2  # 1 (until round 11): one regression for both languages, a threshold each
REASON_PREFIX = "line-model:"


# A page goes to the Chinese part when Han characters are at least half of its judged text (its page_zh feature), or
# when at least this share of its judged lines are mostly Han (han_share > 0.5): a bilingual page, Chinese headings
# over English paragraphs. On the labelled pages no English page has such a line; the bilingual pages have 27-71%.
ROUTE_HAN_LINES = 0.1
_PAGE_ZH, _HAN_SHARE = FEATURE_NAMES.index("page_zh"), FEATURE_NAMES.index("han_share")


def route_zh(x: np.ndarray) -> bool:
    """Whether the page whose rows are x (page_features) is judged by the Chinese part of the model."""
    return bool(x[0, _PAGE_ZH]) or float((x[:, _HAN_SHARE] > 0.5).mean()) >= ROUTE_HAN_LINES


class LineModelError(GptkitError):
    """A line-model file is missing, malformed, or was trained on other features."""


@dataclass(frozen=True, eq=False)  # numpy fields: compared by identity
class LangModel:
    """The logistic regression of one language's pages."""

    mean: np.ndarray  # (N_FEATURES,)
    scale: np.ndarray  # (N_FEATURES,), > 0
    coef: np.ndarray  # (N_FEATURES,) on standardised features
    intercept: float
    threshold: float  # drop when P(boilerplate) >= threshold

    def logits(self, x: np.ndarray) -> np.ndarray:
        """(n,) log-odds that each row is boilerplate."""
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept

    def judge(self, x: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """(n,) bool drop mask, and per row the feature that pushed it furthest towards boilerplate."""
        contrib = (x - self.mean) / self.scale * self.coef  # (n, N_FEATURES)
        t = self.threshold
        drop = contrib.sum(axis=1) + self.intercept >= math.log(t / (1 - t))
        top = contrib.argmax(axis=1)
        pushed = contrib[np.arange(len(top)), top] > 0  # no feature pushed it: the prior (intercept) did
        return drop, [FEATURE_NAMES[k] if p else "prior" for k, p in zip(top.tolist(), pushed.tolist(), strict=True)]

    def to_json(self) -> dict:
        return {
            "kind": "logistic",
            "mean": [float(v) for v in self.mean],
            "scale": [float(v) for v in self.scale],
            "coef": [float(v) for v in self.coef],
            "intercept": float(self.intercept),
            "threshold": float(self.threshold),
        }


@dataclass(frozen=True, eq=False)
class LineModel:
    """One part per page language, a page routed by route_zh."""

    zh: LangModel | TreeModel
    en: LangModel | TreeModel

    @classmethod
    def shared(cls, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: float,
               threshold_zh: float, threshold_en: float) -> LineModel:  # fmt: skip
        """One regression for both languages, a threshold each."""
        return cls(
            LangModel(mean, scale, coef, intercept, threshold_zh), LangModel(mean, scale, coef, intercept, threshold_en)
        )

    def part(self, zh: bool) -> LangModel | TreeModel:
        return self.zh if zh else self.en

    def logits(self, x: np.ndarray, zh: bool) -> np.ndarray:
        """(n,) log-odds that each row of a page (Chinese: `zh`) is boilerplate."""
        return self.part(zh).logits(x)

    def judge(self, x: np.ndarray, zh: bool) -> tuple[np.ndarray, list[str]]:
        """(n,) bool drop mask of a page's rows (Chinese: `zh`), and per row the feature that pushed it furthest
        towards boilerplate."""
        return self.part(zh).judge(x)

    def to_json(self, meta: dict | None = None) -> dict:
        return {
            "format": FORMAT,
            "version": FORMAT_VERSION,
            "features": list(FEATURE_NAMES),
            "zh": self.zh.to_json(),
            "en": self.en.to_json(),
            "meta": meta or {},
        }


def _vector(d: dict, key: str, where: str) -> np.ndarray:
    v = d.get(key)
    if not isinstance(v, list) or len(v) != len(FEATURE_NAMES) or not all(isinstance(a, int | float) for a in v):
        raise LineModelError(f"{where}: {key!r} must be a list of {len(FEATURE_NAMES)} numbers")
    arr = np.asarray(v, dtype=np.float64)
    if not np.isfinite(arr).all():
        raise LineModelError(f"{where}: {key!r} holds a non-finite value")
    return arr


def _parse_lang(d: object, where: str) -> LangModel | TreeModel:
    if not isinstance(d, dict) or d.get("kind") not in ("logistic", "trees"):
        raise LineModelError(f"{where}: must be an object whose 'kind' is 'logistic' or 'trees'")
    thr = d.get("threshold")
    if not isinstance(thr, int | float) or not 0 < thr < 1:
        raise LineModelError(f"{where}: 'threshold' must be a number p with 0 < p < 1")
    if d["kind"] == "trees":
        base, trees = d.get("base"), d.get("trees")
        if not isinstance(base, int | float) or not math.isfinite(base):
            raise LineModelError(f"{where}: 'base' must be a finite number")
        if not isinstance(trees, list) or not all(isinstance(t, dict) for t in trees):
            raise LineModelError(f"{where}: 'trees' must be a list of objects")
        try:
            return tree_model(base, trees, thr)
        except TreeError as e:
            raise LineModelError(f"{where}: {e}") from None
    mean, scale, coef = (_vector(d, k, where) for k in ("mean", "scale", "coef"))
    if (scale <= 0).any():
        raise LineModelError(f"{where}: 'scale' must be positive")
    icpt = d.get("intercept")
    if not isinstance(icpt, int | float) or not math.isfinite(icpt):
        raise LineModelError(f"{where}: 'intercept' must be a finite number")
    return LangModel(mean, scale, coef, float(icpt), float(thr))


def parse_line_model(d: object, where: str) -> LineModel:
    """A LineModel from its JSON object; `where` names the file in error messages."""
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise LineModelError(f"{where}: not a {FORMAT} file (its 'format' field must be {FORMAT!r})")
    if d.get("version") != FORMAT_VERSION:
        raise LineModelError(
            f"{where}: {FORMAT} version {d.get('version', 1)!r}, this gptkit reads version {FORMAT_VERSION} "
            "(one regression per language; retrain it: python benchmarks/train_line_model.py)"
        )
    if d.get("features") != list(FEATURE_NAMES):
        raise LineModelError(f"{where}: 'features' differ from gptkit.data.line_features.FEATURE_NAMES (retrain it)")
    return LineModel(_parse_lang(d.get("zh"), f"{where}: 'zh'"), _parse_lang(d.get("en"), f"{where}: 'en'"))


@lru_cache(maxsize=8)
def load_line_model(path: str) -> LineModel:
    """The model in `path` ("builtin": the shipped one), parsed once per process (a file changed later is not
    read again)."""
    p = BUILTIN_PATH if path == "builtin" else Path(path)
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LineModelError(f"{p}: line model file not found") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise LineModelError(f"{p}: cannot read the line model ({e})") from None
    return parse_line_model(d, str(p))
