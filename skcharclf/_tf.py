"""Quiet, thread-aware access to TensorFlow and Keras.

TensorFlow is imported lazily (``import skcharclf`` stays fast and light) and only through
:func:`import_keras`, which first silences TensorFlow's C++ and absl start-up logging. A user who
sets ``TF_CPP_MIN_LOG_LEVEL`` themselves keeps their value. Some start-up lines (absl's preamble,
the oneDNN notice) are printed before that variable is read: the first import runs inside
:func:`skcharclf._quiet.filtered_stderr`, which hides those known lines and shows any other.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from typing import Any

from ._quiet import TENSORFLOW_START_UP_NOISE, filtered_stderr

__all__ = ["import_keras", "limit_threads"]

_threads_set = False


def import_keras() -> Any:
    """Import Keras (TensorFlow backend by default) with TensorFlow's log spam silenced.

    The first call hides TensorFlow's known start-up lines on file descriptor 2 (see
    :mod:`skcharclf._quiet`); ``TF_CPP_MIN_LOG_LEVEL=0`` in the environment shows them all.
    """
    show_all = os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    first_import = "keras" not in sys.modules
    noise = TENSORFLOW_START_UP_NOISE if first_import and not show_all else ()
    with filtered_stderr(noise), warnings.catch_warnings():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=FutureWarning)
        import keras
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf  # already loaded by Keras: its start-up lines are behind us

        tf.get_logger().setLevel(logging.ERROR)
        try:
            from absl import logging as absl_logging

            absl_logging.set_verbosity(absl_logging.ERROR)
        except ImportError:  # pragma: no cover - absl ships with TensorFlow
            pass
    return keras


def limit_threads(n_threads: int | None) -> None:
    """Limit TensorFlow's intra- and inter-op thread pools for this process.

    Call it in a worker process before its first TensorFlow operation (the pools cannot be
    resized once TensorFlow has started). Without this, ``n_jobs`` workers each start one
    thread per core and oversubscribe the machine. ``None`` leaves TensorFlow's defaults.
    """
    global _threads_set
    if n_threads is None or _threads_set:
        return
    import_keras()
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(n_threads))
        tf.config.threading.set_inter_op_parallelism_threads(min(int(n_threads), 2))
    except RuntimeError:
        # TensorFlow is already running in this process: its pools are fixed now.
        pass
    _threads_set = True


def pin_op_determinism_state() -> None:
    """Make TensorFlow read its op-determinism setting now, before scikeras touches it.

    scikeras's ``tensorflow_random_state`` (used for every fit) sets ``TF_DETERMINISTIC_OPS=1``,
    enables op determinism, and on exit disables it again only if it was off before. But
    TensorFlow reads that environment variable the first time anyone asks, so a first ask
    *inside* the context finds it on and it stays on for the rest of the process: every
    unseeded random op of the user's own TensorFlow code would then raise. Asking once here
    settles the state the process started with.
    """
    if import_keras().backend.backend() == "tensorflow":
        from tensorflow.python.framework import config

        config.is_op_determinism_enabled()
