"""Upper bounds on the parameters that size memory or time, and a constraint to check them.

A model file edited by hand goes through the same constraints as the constructor (its saved
parameters are checked with ``_validate_params``), so these bounds also keep a tampered file
from asking for gigabytes. Each bound is far above any real use on character images.
"""

from __future__ import annotations

import math
from numbers import Integral
from typing import Any

from sklearn.utils._param_validation import Options

from ._archive import short_text

__all__ = [
    "FILTERS",
    "IMAGE_SHAPE",
    "MAX_BATCH_SIZE",
    "MAX_BLOCKS_PER_STAGE",
    "MAX_CHECKPOINTS",
    "MAX_EPOCHS",
    "MAX_FILTERS",
    "MAX_IMAGE_SIDE",
    "MAX_STAGES",
    "MAX_THREADS",
    "IntTuple",
    "check_network_config",
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


# The constraints of an image shape and of a tuple of filters, shared by the estimators.
IMAGE_SHAPE = IntTuple(low=1, high=MAX_IMAGE_SIDE, min_len=2, max_len=2, example=(32, 32))
FILTERS = IntTuple(low=1, high=MAX_FILTERS, min_len=0, max_len=MAX_STAGES, example=(24, 48, 96))


# Bounds on a saved network's configuration, checked before Keras builds (and allocates) any
# layer: a configuration edited by hand could otherwise ask for a Dense layer of a billion
# units. The package's networks stay far below them (units: the number of classes; filters at
# most 1024; kernels of 3; an input of at most 1024 x 1024 pixels).
_MAX_LAYER_SIZE = 2**20  # units, filters, input_dim, output_dim; each dim of a shape
_MAX_WINDOW = 1024  # each entry of kernel_size, pool_size, strides, dilation_rate, size
_SIZE_KEYS = frozenset({"units", "filters", "input_dim", "output_dim", "depth_multiplier"})
_WINDOW_KEYS = frozenset({"kernel_size", "pool_size", "strides", "dilation_rate", "size"})
_SHAPE_KEYS = frozenset({"shape", "batch_shape", "batch_input_shape", "target_shape"})


def _entries(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def check_network_config(config: Any, max_params: int) -> None:
    """Refuse a Keras configuration that would build oversized layers.

    Walks every layer (nested models included) in the order the configuration lists them,
    checks each size under the keys above against its bound, and adds up an estimate of the
    parameters (kernel sizes times input and output channels, plus biases; the input of each
    layer taken from the shapes of the tensors Keras records, else from the layer before).

    Raises
    ------
    ValueError
        Naming the layer, the key and the value, or the estimated number of parameters.
    """
    state = {"spatial": 1, "channels": 1, "params": 0}

    def number(value: Any, layer: str, key: str, bound: int) -> int:
        if value is None:
            return 1
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= bound:
            raise ValueError(
                f"layer {layer} of the network configuration has "
                f"{key}={short_text(repr(value))}; at most {bound} is allowed"
            )
        return max(value, 1)

    def visit(node: Any) -> None:
        if isinstance(node, list):
            for item in node:
                visit(item)
            return
        if not isinstance(node, dict):
            return
        for value in node.values():  # first the input tensors, whose shapes Keras records
            visit(value)
        layer_config = node.get("config")
        if isinstance(node.get("class_name"), str) and isinstance(layer_config, dict):
            layer(node["class_name"], layer_config)

    def layer(kind: str, config: dict) -> None:
        name = short_text(repr(config.get("name", kind)))
        sizes: dict[str, int] = {}
        for key, value in config.items():
            if key in _SIZE_KEYS:
                sizes[key] = number(value, name, key, _MAX_LAYER_SIZE)
            elif key in _WINDOW_KEYS:
                product = 1
                for entry in _entries(value):
                    product *= number(entry, name, key, _MAX_WINDOW)
                sizes[key] = product
            elif key in _SHAPE_KEYS and isinstance(value, (list, tuple)):
                dims = [number(entry, name, key, _MAX_LAYER_SIZE) for entry in value]
                if key in ("batch_shape", "batch_input_shape"):
                    dims = dims[1:]
                if dims:
                    state["spatial"] = math.prod(dims[:-1])
                    state["channels"] = dims[-1]
        spatial, channels = state["spatial"], state["channels"]
        if "filters" in sizes:
            state["params"] += (channels * sizes.get("kernel_size", 1) + 1) * sizes["filters"]
            state["channels"] = sizes["filters"]
            if "Transpose" in kind:
                state["spatial"] = spatial * sizes.get("strides", 1)
        elif "depth_multiplier" in sizes:
            state["params"] += channels * sizes["depth_multiplier"] * sizes.get("kernel_size", 1)
            state["channels"] = channels * sizes["depth_multiplier"]
        elif "units" in sizes:
            state["params"] += (channels + 1) * sizes["units"]
            state["channels"] = sizes["units"]
        elif "output_dim" in sizes:
            state["params"] += sizes.get("input_dim", 1) * sizes["output_dim"]
            state["channels"] = sizes["output_dim"]
        elif kind == "Flatten":
            state["spatial"], state["channels"] = 1, spatial * channels
        elif kind.startswith("Global"):
            state["spatial"] = 1
        elif kind.startswith("UpSampling"):
            state["spatial"] = spatial * sizes.get("size", 1)
        if state["params"] > max_params:
            raise ValueError(
                f"the network configuration asks for about {state['params']:,} parameters by "
                f"layer {name}; at most {max_params:,} are allowed"
            )

    visit(config)
