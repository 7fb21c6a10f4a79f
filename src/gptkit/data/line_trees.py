"""Gradient-boosted regression trees over the line features, as plain arrays (one part of gptkit.data.line_model).

A tree is four parallel lists over its nodes: `feature` (-1 at a leaf), `threshold` (go left when the feature's
value is <= it), `left` / `right` (child node indices), and `value`: at a leaf its addition to the log-odds, at an
inner node the average of its leaves weighted by the training rows that reached them. The log-odds of a row is
`base` plus its leaf in every tree. Why a row was dropped: each split on its path moves its expected value from
the node's to the child's, and that move is the split feature's; the feature with the largest total move towards
boilerplate is the reason ("prior" when none moved it up).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gptkit.data.line_features import FEATURE_NAMES


class TreeError(ValueError):
    """A tree's arrays are inconsistent (gptkit.data.line_model reports it with the file)."""


@dataclass(frozen=True, eq=False)  # numpy fields: compared by identity
class TreeModel:
    base: float
    feature: np.ndarray  # (trees, nodes) int64, -1 at a leaf and in the padding after a small tree's nodes
    threshold: np.ndarray  # (trees, nodes) float64
    left: np.ndarray  # (trees, nodes) int64
    right: np.ndarray
    value: np.ndarray  # (trees, nodes) float64
    depth: int  # the longest path from a root to a leaf
    threshold_p: float  # drop when P(boilerplate) >= it

    def _paths(self, x: np.ndarray, explain: bool) -> tuple[np.ndarray | None, np.ndarray]:
        """(n,) log-odds of the rows x, and when `explain` (n, N_FEATURES) the per-feature moves of the log-odds
        along their paths."""
        n, t = len(x), self.feature.shape[0]
        trees = np.arange(t)[None, :]
        node = np.zeros((n, t), dtype=np.int64)
        contrib = np.zeros((n, len(FEATURE_NAMES))) if explain else None
        rows = np.repeat(np.arange(n)[:, None], t, axis=1)
        for _ in range(self.depth):
            f = self.feature[trees, node]
            inner = f >= 0
            go_left = x[rows, np.maximum(f, 0)] <= self.threshold[trees, node]
            child = np.where(inner, np.where(go_left, self.left[trees, node], self.right[trees, node]), node)
            if contrib is not None:
                move = self.value[trees, child] - self.value[trees, node]
                np.add.at(contrib, (rows[inner], f[inner]), move[inner])
            node = child
        return contrib, self.base + self.value[trees, node].sum(axis=1)

    def logits(self, x: np.ndarray) -> np.ndarray:
        """(n,) log-odds that each row is boilerplate."""
        return self._paths(x, explain=False)[1]

    def judge(self, x: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """(n,) bool drop mask, and per row the feature that moved it furthest towards boilerplate."""
        contrib, logits = self._paths(x, explain=True)
        assert contrib is not None
        t = self.threshold_p
        drop = logits >= math.log(t / (1 - t))
        top = contrib.argmax(axis=1)
        pushed = contrib[np.arange(len(top)), top] > 0
        return drop, [FEATURE_NAMES[k] if p else "prior" for k, p in zip(top.tolist(), pushed.tolist(), strict=True)]

    def to_json(self) -> dict:
        trees = []
        for k in range(self.feature.shape[0]):
            size = int(np.count_nonzero(self.left[k] >= 0) * 2 + 1)  # a binary tree: inner nodes * 2 + 1
            trees.append(
                {
                    "feature": self.feature[k, :size].tolist(),
                    "threshold": self.threshold[k, :size].tolist(),
                    "left": self.left[k, :size].tolist(),
                    "right": self.right[k, :size].tolist(),
                    "value": self.value[k, :size].tolist(),
                }
            )
        return {"kind": "trees", "base": float(self.base), "threshold": float(self.threshold_p), "trees": trees}


def tree_model(base: float, trees: list[dict], threshold_p: float) -> TreeModel:
    """A TreeModel from its trees' node lists (to_json's), checked: raises TreeError naming what is wrong."""
    if not trees:
        raise TreeError("'trees' is empty")
    width = max(len(t.get("feature", [])) for t in trees)
    arrays = {k: np.full((len(trees), width), -1 if k != "value" and k != "threshold" else 0.0) for k in _KEYS}
    depth = 0
    for k, t in enumerate(trees):
        lists = [t.get(key) for key in _KEYS]
        if not all(isinstance(v, list) for v in lists) or len({len(v) for v in lists}) != 1 or not lists[0]:
            raise TreeError(f"tree {k}: {', '.join(_KEYS)} must be lists of one length")
        n = len(lists[0])
        for key, v in zip(_KEYS, lists, strict=True):
            if not all(isinstance(a, int | float) and math.isfinite(a) for a in v):
                raise TreeError(f"tree {k}: {key!r} holds a value that is not a finite number")
            arrays[key][k, :n] = v
        f, lo, hi = arrays["feature"][k, :n], arrays["left"][k, :n], arrays["right"][k, :n]
        inner = f >= 0
        node = np.arange(n)
        bad_child = (lo <= node) | (hi <= node) | (lo >= n) | (hi >= n)  # children come after their parent
        if (f >= len(FEATURE_NAMES)).any() or (inner & bad_child).any():
            raise TreeError(f"tree {k}: a feature index or child index is out of range")
        depth = max(depth, _depth(f.astype(np.int64), lo.astype(np.int64), hi.astype(np.int64)))
    return TreeModel(
        float(base),
        arrays["feature"].astype(np.int64),
        arrays["threshold"].astype(np.float64),
        arrays["left"].astype(np.int64),
        arrays["right"].astype(np.int64),
        arrays["value"].astype(np.float64),
        depth,
        float(threshold_p),
    )


_KEYS = ("feature", "threshold", "left", "right", "value")


def _depth(feature: np.ndarray, left: np.ndarray, right: np.ndarray) -> int:
    best, stack = 0, [(0, 0)]
    while stack:
        node, d = stack.pop()
        if feature[node] < 0:
            best = max(best, d)
        else:
            stack += [(int(left[node]), d + 1), (int(right[node]), d + 1)]
    return best


def from_sklearn(clf, threshold_p: float) -> TreeModel:
    """The TreeModel of a fitted sklearn GradientBoostingClassifier (binary, log-loss, prior init): its trees'
    public arrays (tree_), leaf values scaled by the learning rate, inner values re-averaged over the leaves."""
    p = float(clf.init_.class_prior_[1])
    trees = []
    for est in clf.estimators_[:, 0]:
        t = est.tree_
        value = t.value[:, 0, 0] * clf.learning_rate
        w = t.weighted_n_node_samples
        feature = np.where(t.children_left >= 0, t.feature, -1)
        for node in range(t.node_count - 1, -1, -1):  # children come after their parent
            if feature[node] >= 0:
                lo, hi = t.children_left[node], t.children_right[node]
                value[node] = (value[lo] * w[lo] + value[hi] * w[hi]) / (w[lo] + w[hi])
        trees.append(
            {
                "feature": feature.tolist(),
                "threshold": np.where(feature >= 0, t.threshold, 0.0).tolist(),
                "left": t.children_left.tolist(),
                "right": t.children_right.tolist(),
                "value": value.tolist(),
            }
        )
    return tree_model(math.log(p / (1 - p)), trees, threshold_p)
