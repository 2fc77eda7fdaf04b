"""Shared test configuration: quiet TensorFlow, deterministic small thread pools."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MPLBACKEND", "Agg")
