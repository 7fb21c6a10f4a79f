"""The learned line classifier: logistic regression over gptkit.data.line_features, the last word on every
judged line of a page (the line rules' verdicts are among its features).

    model = load_line_model("builtin")        # src/gptkit/data/line_model.json (scripts/train_line_model.py)
    drop, reasons = model.judge(x, zh)        # x: (n, N_FEATURES) from page_features

The parameters are a JSON file (no pickle): feature names (checked against FEATURE_NAMES, so a model trained on
other features is refused), per-feature mean and scale (standardisation), coefficients, intercept, and one
decision threshold per language, chosen on the training folds for >= the target share of content characters
kept (a dropped paragraph is the worse error). Inference is one matrix-vector product per page.

A line the model drops records why: the rule that had dropped it, or "line-model:<feature>", the feature that
pushed it furthest towards boilerplate (its coefficient times its standardised value; "prior" when none did).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from gptkit.data.line_features import FEATURE_NAMES
from gptkit.errors import GptkitError

BUILTIN_PATH = Path(__file__).with_name("line_model.json")
FORMAT = "gptkit-line-model"
REASON_PREFIX = "line-model:"


class LineModelError(GptkitError):
    """A line-model file is missing, malformed, or was trained on other features."""


@dataclass(frozen=True, eq=False)  # numpy fields: compared by identity
class LineModel:
    mean: np.ndarray  # (N_FEATURES,)
    scale: np.ndarray  # (N_FEATURES,), > 0
    coef: np.ndarray  # (N_FEATURES,) on standardised features
    intercept: float
    threshold_zh: float  # drop when P(boilerplate) >= threshold
    threshold_en: float

    def logits(self, x: np.ndarray) -> np.ndarray:
        """(n,) log-odds that each row is boilerplate."""
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept

    def judge(self, x: np.ndarray, zh: bool) -> tuple[np.ndarray, list[str]]:
        """(n,) bool drop mask, and per row the feature that pushed it furthest towards boilerplate."""
        z = (x - self.mean) / self.scale
        contrib = z * self.coef  # (n, N_FEATURES)
        t = self.threshold_zh if zh else self.threshold_en
        drop = contrib.sum(axis=1) + self.intercept >= math.log(t / (1 - t))
        top = contrib.argmax(axis=1)
        pushed = contrib[np.arange(len(top)), top] > 0  # no feature pushed it: the prior (intercept) did
        return drop, [FEATURE_NAMES[k] if p else "prior" for k, p in zip(top.tolist(), pushed.tolist(), strict=True)]

    def to_json(self, meta: dict | None = None) -> dict:
        return {
            "format": FORMAT,
            "features": list(FEATURE_NAMES),
            "mean": [float(v) for v in self.mean],
            "scale": [float(v) for v in self.scale],
            "coef": [float(v) for v in self.coef],
            "intercept": float(self.intercept),
            "threshold": {"zh": float(self.threshold_zh), "en": float(self.threshold_en)},
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


def parse_line_model(d: object, where: str) -> LineModel:
    """A LineModel from its JSON object; `where` names the file in error messages."""
    if not isinstance(d, dict) or d.get("format") != FORMAT:
        raise LineModelError(f"{where}: not a {FORMAT} file (its 'format' field must be {FORMAT!r})")
    if d.get("features") != list(FEATURE_NAMES):
        raise LineModelError(f"{where}: 'features' differ from gptkit.data.line_features.FEATURE_NAMES (retrain it)")
    mean, scale, coef = (_vector(d, k, where) for k in ("mean", "scale", "coef"))
    if (scale <= 0).any():
        raise LineModelError(f"{where}: 'scale' must be positive")
    thr = d.get("threshold")
    ok = isinstance(thr, dict) and all(isinstance(thr.get(k), int | float) and 0 < thr[k] < 1 for k in ("zh", "en"))
    if not ok:
        raise LineModelError(f"{where}: 'threshold' must be {{'zh': p, 'en': p}} with 0 < p < 1")
    icpt = d.get("intercept")
    if not isinstance(icpt, int | float) or not math.isfinite(icpt):
        raise LineModelError(f"{where}: 'intercept' must be a finite number")
    return LineModel(mean, scale, coef, float(icpt), float(thr["zh"]), float(thr["en"]))


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
