"""Findings and their text (skcharclf.diagnostics.Finding, format_findings)."""

import json

import numpy as np
import pytest
from _diagnostics_data import (
    divergence_nan,
    overfitting,
)

from skcharclf.diagnostics import (
    Finding,
    diagnose_history,
    format_findings,
)

# --------------------------------------------------------------------------------------------
# Finding and format_findings
# --------------------------------------------------------------------------------------------


def test_finding_text_and_dict():
    (finding,) = diagnose_history(overfitting(np.random.default_rng(0)))
    text = str(finding)
    assert text.startswith("[warning] overfitting: Overfitting")
    assert "epochs: " in text and "evidence: best_val_epoch=" in text
    assert "what to try:" in text
    record = finding.to_dict()
    assert json.loads(json.dumps(record)) == record
    assert record["code"] == "overfitting" and isinstance(record["epochs"][0], int)


def test_finding_to_dict_makes_nan_json_null():
    (finding,) = diagnose_history(divergence_nan(np.random.default_rng(0)))
    record = finding.to_dict()
    assert record["evidence"]["loss"] is None
    json.dumps(record, allow_nan=False)


def test_finding_rejects_unknown_severity():
    with pytest.raises(ValueError, match="severity must be one of"):
        Finding("x", "fatal", "title")


def test_format_findings_orders_by_severity_and_numbers():
    findings = [
        Finding("a", "info", "an info"),
        Finding("b", "error", "an error"),
        Finding("c", "warning", "a warning"),
    ]
    text = format_findings(findings)
    assert text.index("1. [error] b") < text.index("2. [warning] c") < text.index("3. [info] a")
    assert format_findings([]).startswith("No findings")
