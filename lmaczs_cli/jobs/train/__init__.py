"""Training an LMAC-ZS decoder: config, data, DDP helpers, validation and the :class:`Trainer`."""

from lmaczs_cli.jobs.train.config import DATA_SETS, TrainConfig, TrainResult, lr_lambda
from lmaczs_cli.jobs.train.trainer import Trainer, train

__all__ = ["DATA_SETS", "TrainConfig", "TrainResult", "Trainer", "lr_lambda", "train"]
