"""An interpolated Kneser-Ney character n-gram: the count baseline a small GPT must beat.

Characters of the decoded documents, each document preceded by one separator symbol (the <|endoftext|> that
starts every document in a prepared split), so the model predicts document ends as gptkit.eval.lm counts
them: one character each. Characters never seen in training map to one unknown symbol.

For an order-N model and a context h of the last N-1 characters (Chen & Goodman 1998, interpolated KN):

    P(w | h) = max(c(h w) - D, 0) / c(h .) + D * N1+(h .) / c(h .) * P(w | h minus its first character)

with raw counts c at the highest order and continuation counts (how many different characters precede
the n-gram) at the lower orders; a context never seen falls through to the shorter one. The order-1
distribution interpolates with the uniform one over the alphabet, so every symbol has probability > 0.
D = n1 / (n1 + 2 n2) per order, from the counts of n-grams seen once (n1) and twice (n2).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

SEPARATOR = "\x00"  # stands for the <|endoftext|> before each document
UNKNOWN = "\x01"  # any character not seen in training


def join_documents(documents: Iterable[str]) -> str:
    return "".join(SEPARATOR + d for d in documents)


@dataclass
class _Order:
    counts: Counter  # n-gram -> count (raw at the top order, continuation counts below)
    context_total: Counter  # context -> sum of counts of its n-grams
    context_types: Counter  # context -> how many distinct n-grams extend it
    discount: float


class KneserNey:
    """Fit on training text (documents joined by `join_documents`), then `nats(text)` on other text."""

    def __init__(self, text: str, order: int) -> None:
        if order < 1:
            raise ValueError(f"order must be at least 1, got {order}")
        self.order = order
        self.alphabet = sorted(set(text) | {UNKNOWN})
        self._known = frozenset(self.alphabet)
        grams = [Counter(text[i : i + n] for i in range(len(text) - n + 1)) for n in range(1, order + 1)]
        self.orders: list[_Order] = []
        for n in range(1, order + 1):
            if n == order:
                counts = grams[n - 1]
            else:  # continuation counts: distinct characters seen before each n-gram
                counts = Counter(g[1:] for g in grams[n])
            total, types = Counter(), Counter()
            for g, c in counts.items():
                total[g[:-1]] += c
                types[g[:-1]] += 1
            n1 = sum(1 for c in counts.values() if c == 1)
            n2 = sum(1 for c in counts.values() if c == 2)
            discount = n1 / (n1 + 2 * n2) if n1 + n2 else 0.5
            self.orders.append(_Order(counts, total, types, discount))

    def prob(self, context: str, symbol: str) -> float:
        """P(symbol | the last order-1 characters of context)."""
        known = self._known
        symbol = symbol if symbol in known else UNKNOWN
        context = "".join(c if c in known else UNKNOWN for c in context[max(0, len(context) - self.order + 1) :])
        p = 1.0 / len(self.alphabet)
        for n in range(1, len(context) + 2):  # order 1 (empty context) up to the longest
            o = self.orders[n - 1]
            h = context[len(context) - n + 1 :] if n > 1 else ""
            total = o.context_total.get(h, 0)
            if total == 0:
                continue  # an unseen context: keep the lower order's estimate
            c = o.counts.get(h + symbol, 0)
            p = (max(c - o.discount, 0.0) + o.discount * o.context_types[h] * p) / total
        return p

    def nats(self, text: str) -> tuple[float, int]:
        """(-sum of ln P(text[i] | text[:i]) for i >= 1, characters predicted)."""
        total = 0.0
        for i in range(1, len(text)):
            total -= math.log(self.prob(text[max(0, i - self.order + 1) : i], text[i]))
        return total, len(text) - 1


def split_text(data_dir: str, split: str) -> str:
    """The documents of one split of a prepared directory, decoded and joined by `join_documents`."""
    from gptkit.data.shards import iter_documents, shard_paths
    from gptkit.errors import GptkitError
    from gptkit.train.data import open_data_dir

    data = open_data_dir(data_dir)
    if data.tokenizer is None:
        raise GptkitError(f"{data_dir}: no tokenizer files, so its tokens cannot be read back as text")
    paths = shard_paths(data_dir, split)
    if not paths:
        raise GptkitError(f"{data_dir}: no {split}_*.bin token shards")
    return join_documents(data.tokenizer.decode(doc[1:].tolist()) for doc in iter_documents(paths))
