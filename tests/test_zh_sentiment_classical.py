"""benchmarks/zh_sentiment_classical.py: the NB-SVM's log-count ratios against a brute-force count, and its
classifier on a toy set a linear rule separates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import sparse

from tests.train_helpers import load_benchmark


@pytest.fixture(scope="module")
def classical():
    return load_benchmark("zh_sentiment_classical")


def test_nb_ratios_match_brute_force(classical):
    rng = np.random.default_rng(0)
    dense = (rng.random((12, 7)) < 0.4).astype(np.float64)
    labels = np.array([1, 0] * 6)
    got = classical.nb_ratios(sparse.csr_matrix(dense), labels, alpha=0.5)
    for j in range(dense.shape[1]):
        p = [0.5 + sum(dense[i, k] for i in range(12) if labels[i] == 1) for k in range(7)]
        q = [0.5 + sum(dense[i, k] for i in range(12) if labels[i] == 0) for k in range(7)]
        want = math.log(p[j] / sum(p)) - math.log(q[j] / sum(q))
        assert got[j] == pytest.approx(want, abs=1e-12)


def test_nbsvm_separates_a_toy_set(classical):
    texts = ["好极了", "很好", "好评", "真好用", "太差了", "很差", "差评", "真难用"] * 3
    labels = np.array([1, 1, 1, 1, 0, 0, 0, 0] * 3)
    fit = classical.nbsvm_model((1, 2), c=1.0)
    assert list(fit(texts, labels, ["非常好", "非常差"])) == [1, 0]
