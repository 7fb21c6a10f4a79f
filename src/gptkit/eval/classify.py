"""`gptkit eval classify`: accuracy, macro-F1 and the confusion matrix of a fine-tuned classifier on labelled
records (a JSONL file, or builtin:zh-sentiment: its test split).

Macro-F1 is the unweighted mean over the labels of F1 = 2 P R / (P + R) (0 for a label where P + R = 0);
labels are the model's (multiple choice: the choice indices).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class ClassifyScore:
    records: int
    accuracy: float
    macro_f1: float
    labels: list[Any]
    confusion: list[list[int]]  # confusion[i][j]: records of true label i predicted as label j
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "records": self.records,
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "labels": self.labels,
            "confusion": self.confusion,
            "seconds": round(self.seconds, 3),
        }


def classification_scores(truth: list[int], predicted: list[int], labels: list[Any]) -> tuple[float, float, list]:
    """(accuracy, macro-F1, confusion matrix) of label indices."""
    k = len(labels)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (np.asarray(truth, dtype=np.int64), np.asarray(predicted, dtype=np.int64)), 1)
    n = confusion.sum()
    accuracy = float(np.trace(confusion) / n) if n else 0.0
    f1s = []
    for i in range(k):
        tp = confusion[i, i]
        p_den, r_den = confusion[:, i].sum(), confusion[i, :].sum()
        precision = tp / p_den if p_den else 0.0
        recall = tp / r_den if r_den else 0.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
    return accuracy, float(np.mean(f1s)) if f1s else 0.0, confusion.tolist()


def evaluate_classifier(
    model_dir: str | os.PathLike, data: str, *, batch_size: int = 32, device: str = "cpu"
) -> ClassifyScore:
    from gptkit.classifier import Classifier
    from gptkit.train.finetune import label_indices
    from gptkit.train.finetune_data import read_labelled

    clf = Classifier.load(model_dir, device=device)
    records = read_labelled(data, clf.spec.kind, split="test")  # records of another kind are refused
    truth = label_indices(records, clf.spec)
    t0 = time.perf_counter()
    inputs = [_input(r.texts, clf.spec.kind) for r in records.records]
    predicted = clf.logits(inputs, batch_size).argmax(-1).tolist()
    seconds = time.perf_counter() - t0
    labels = clf.labels if clf.spec.kind != "multiple_choice" else list(range(clf.spec.n_choices))
    accuracy, macro_f1, confusion = classification_scores(truth, predicted, labels)
    return ClassifyScore(len(truth), accuracy, macro_f1, labels, confusion, seconds)


def _input(texts: tuple[str, ...], kind: str) -> Any:
    if kind == "classification":
        return texts[0]
    if kind == "multiple_choice":
        return (texts[0], list(texts[1:]))
    return texts
