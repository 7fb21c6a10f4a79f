"""Evaluation: how well a model predicts text (`gptkit.eval.lm`)."""
