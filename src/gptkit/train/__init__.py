"""Pretraining: settings, the loop, checkpoints and resume, distributed setup, metrics.

    from gptkit.train import load_run_config, train
    cfg = load_run_config("run.toml", ["train.max_steps=500"])      # or load_run_config(None, [...])
    result = train(cfg, "runs/x")                                     # train(cfg, "runs/x", resume=True)

`gptkit train` and `torchrun ... -m gptkit train` call the same function.
"""

from gptkit.train.config import DataConfig, RunConfig, TrainConfig, load_run_config
from gptkit.train.trainer import Trainer, TrainingError, TrainResult, train

__all__ = [
    "DataConfig",
    "RunConfig",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingError",
    "load_run_config",
    "train",
]
