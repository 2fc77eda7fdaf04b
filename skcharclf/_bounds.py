"""Upper bounds on the parameters that size memory or time, and a constraint to check them.

A model file edited by hand goes through the same constraints as the constructor (its saved
parameters are checked with ``_validate_params``), so these bounds also keep a tampered file
from asking for gigabytes. Each bound is far above any real use on character images.
"""

from __future__ import annotations

from numbers import Integral
from typing import Any

from sklearn.utils._param_validation import Options

__all__ = [
    "MAX_BATCH_SIZE",
    "MAX_BLOCKS_PER_STAGE",
    "MAX_CHECKPOINTS",
    "MAX_EPOCHS",
    "MAX_FILTERS",
    "MAX_IMAGE_SIDE",
    "MAX_STAGES",
    "MAX_THREADS",
    "IntTuple",
]

# An image side of 1024 pixels (4 MB of float32 per image) is 32 times the usual 32.
MAX_IMAGE_SIDE = 1024
# Filters per convolution stage: ResNet-50 stops at 512 (2048 in its bottlenecks).
MAX_FILTERS = 1024
# Stages of the package's networks: each halves the image; 8 stages take 256 pixels to 1.
MAX_STAGES = 8
# Residual blocks per stage: ResNet-152 has at most 36 in a stage.
MAX_BLOCKS_PER_STAGE = 64
# Samples per training step: 65536 images of 32 x 32 are 256 MB of float32.
MAX_BATCH_SIZE = 2**16
# Epochs (and patience): a million epochs would not end on any dataset worth training.
MAX_EPOCHS = 10**6
# Checkpoints averaged: each keeps a copy of the weights.
MAX_CHECKPOINTS = 1000
# Threads of TensorFlow's pools.
MAX_THREADS = 1024


class IntTuple(Options):
    """A tuple (or list) of integers in ``[low, high]``, of a length in ``[min_len, max_len]``.

    Usable in ``_parameter_constraints`` (it is an :class:`~sklearn.utils._param_validation.
    Options`, the only kinds of constraint objects scikit-learn accepts there).
    """

    def __init__(
        self, *, low: int, high: int, min_len: int, max_len: int, example: tuple[int, ...]
    ) -> None:
        super().__init__(tuple, {example})
        self.low, self.high = low, high
        self.min_len, self.max_len = min_len, max_len

    def is_satisfied_by(self, val: Any) -> bool:
        return (
            isinstance(val, (tuple, list))
            and self.min_len <= len(val) <= self.max_len
            and all(
                isinstance(v, Integral) and not isinstance(v, bool) and self.low <= v <= self.high
                for v in val
            )
        )

    def __str__(self) -> str:
        if self.min_len == self.max_len:
            length = f"{self.min_len}"
        else:
            length = f"{self.min_len} to {self.max_len}"
        return f"a tuple of {length} integers in [{self.low}, {self.high}]"
