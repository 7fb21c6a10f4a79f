"""The Kneser-Ney character n-gram baseline against a brute-force computation from its definition."""

from __future__ import annotations

import math

import pytest

from gptkit.eval.ngram import SEPARATOR, UNKNOWN, KneserNey, join_documents

TRAIN = join_documents(["abracadabra", "cadabra abra", "这家酒店很好", "酒店不好"])


def occurrences(text: str, gram: str) -> int:
    return sum(1 for i in range(len(text) - len(gram) + 1) if text[i : i + len(gram)] == gram)


def continuation(text: str, gram: str) -> int:
    return len({text[i - 1] for i in range(1, len(text) - len(gram) + 1) if text[i : i + len(gram)] == gram})


def reference_prob(text: str, order: int, context: str, symbol: str) -> float:
    """Interpolated Kneser-Ney by its definition, every count found by scanning the text."""
    alphabet = sorted(set(text) | {UNKNOWN})
    context = "".join(c if c in alphabet else UNKNOWN for c in context)[-(order - 1) :] if order > 1 else ""
    symbol = symbol if symbol in alphabet else UNKNOWN

    def count(gram: str) -> int:
        return occurrences(text, gram) if len(gram) == order else continuation(text, gram)

    def discount(n: int) -> float:
        grams = {text[i : i + n] for i in range(len(text) - n + 1)}
        counts = [(occurrences if n == order else continuation)(text, g) for g in grams]
        n1, n2 = counts.count(1), counts.count(2)
        return n1 / (n1 + 2 * n2)

    def prob_order1() -> float:
        counts = [count(a) for a in alphabet]
        d = discount(1)
        types = sum(1 for c in counts if c > 0)
        return (max(count(symbol) - d, 0) + d * types / len(alphabet)) / sum(counts)

    # Recurse from the empty context up to the full one.
    p = prob_order1()
    for k in range(1, len(context) + 1):
        h = context[len(context) - k :]
        counts = [count(h + a) for a in alphabet]
        total = sum(counts)
        if total == 0:
            continue
        d = discount(k + 1)
        types = sum(1 for c in counts if c > 0)
        p = (max(count(h + symbol) - d, 0) + d * types * p) / total
    return p


@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_probabilities_match_the_definition_and_sum_to_one(order):
    model = KneserNey(TRAIN, order)
    contexts = ["", "a", "ab", "cad", "酒店", "zzz", SEPARATOR + "ab", "店很"]
    for context in contexts:
        probs = {a: model.prob(context, a) for a in model.alphabet}
        assert sum(probs.values()) == pytest.approx(1.0, abs=1e-12)
        assert min(probs.values()) > 0
        for symbol in ["a", "b", "店", SEPARATOR, "q"]:  # "q" is unseen: the unknown symbol
            assert model.prob(context, symbol) == pytest.approx(
                reference_prob(TRAIN, order, context, symbol), rel=1e-12
            )


def test_nats_sum_the_log_probabilities_of_each_next_character():
    model = KneserNey(TRAIN, 3)
    val = join_documents(["cadabra", "酒店很好"])
    nats, n = model.nats(val)
    expected = -sum(math.log(reference_prob(TRAIN, 3, val[max(0, i - 2) : i], val[i])) for i in range(1, len(val)))
    assert n == len(val) - 1 and nats == pytest.approx(expected, rel=1e-12)
    # More context helps on text like the training text.
    assert model.nats(val)[0] < KneserNey(TRAIN, 1).nats(val)[0]
