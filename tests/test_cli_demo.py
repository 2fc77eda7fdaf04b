"""The command line: `skcharclf demo`, usage errors and error reporting."""

import re
import subprocess
import sys

import pytest

from skcharclf.cli import main
from skcharclf.cli._common import table as format_table


def _rows(text: str, first: str) -> list[list[str]]:
    """The whitespace-split lines of ``text`` that start with ``first``."""
    return [line.split() for line in text.splitlines() if line.startswith(first)]


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    return tmp_path_factory.mktemp("demo") / "demo-report.html"


@pytest.fixture(scope="module")
def demo_output(demo_report):
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(["demo", "--quick", "--n-jobs", "1", "--report", str(demo_report)])
    return status, out.getvalue(), err.getvalue()


def test_demo_ends_by_writing_its_report(demo_output, demo_report):
    _, out, _ = demo_output
    assert out.rstrip().endswith(f"Wrote the report to {str(demo_report)!r}")
    html = demo_report.read_text(encoding="utf-8")
    assert html.lstrip().lower().startswith("<!doctype html>")
    assert "skcharclf demo" in html


def test_demo_succeeds_quietly(demo_output):
    status, _, err = demo_output
    assert status == 0
    assert err == ""


def test_demo_prints_data_summary(demo_output):
    _, out, _ = demo_output
    assert "Built-in digit characters: 1317 images, 10 classes, height 32, width" in out
    assert "2:18*" in out and "5:18*" in out and "8:17*" in out and "0:178 " in out
    assert "Imbalance ratio (largest / smallest class): 10.8" in out
    assert re.search(r"-> (\d+) training / (\d+) test images", out)


def test_demo_prints_scores(demo_output):
    _, out, _ = demo_output
    header = _rows(out, "model")[0]
    assert header[:2] == ["model", "accuracy"] and "macro-F1" in header
    (row,) = _rows(out, "baseline")
    accuracy, balanced, f1, fit_time = map(float, row[1:])
    # chance is 0.1; the forest does far better, and worse on the rare classes
    assert 0.8 < accuracy <= 1.0
    assert 0.5 < balanced <= accuracy
    assert 0.5 < f1 <= 1.0
    assert fit_time > 0


def test_demo_prints_per_class_recall(demo_output):
    _, out, _ = demo_output
    section = out.split("Per-class recall on the test split", 1)[1]
    table = section.strip().split("\n\n", 1)[0]
    rows = [line.split() for line in table.splitlines()[2:]]
    assert [row[0] for row in rows] == [str(c) for c in range(10)]
    rare = [row[0] for row in rows if "(rare)" in row]
    assert rare == ["2", "5", "8"]
    # columns: class ["(rare)"], train, test, then one recall per model (baseline, cnn)
    rows = [[cell for cell in row if cell != "(rare)"] for row in rows]
    for row in rows:
        train, test, recalls = int(row[1]), int(row[2]), [float(r) for r in row[3:]]
        assert train > 0 and test > 0 and len(recalls) == 2
        assert all(0.0 <= recall <= 1.0 for recall in recalls)
    # the stratified split keeps the long tail in both parts
    counts = {row[0]: (int(row[1]), int(row[2])) for row in rows}
    assert counts["2"][0] < counts["1"][0] / 5 and counts["2"][1] < counts["1"][1] / 5


def test_no_command_is_an_error(capsys):
    assert main([]) == 2
    assert "choose a command" in capsys.readouterr().err


def test_unknown_command_and_bad_option(capsys):
    assert main(["nope"]) == 2
    assert "invalid choice: 'nope'" in capsys.readouterr().err
    assert main(["demo", "--test-size", "2"]) == 2
    assert "expected a number between 0 and 1, got '2'" in capsys.readouterr().err
    assert main(["demo", "--models", "svm"]) == 2
    assert "invalid choice: 'svm'" in capsys.readouterr().err


def test_help_exits_zero(capsys):
    assert main(["demo", "--help"]) == 0
    out = capsys.readouterr().out
    assert "--test-size" in out and "--quick" not in out


def test_errors_are_one_line_on_stderr(monkeypatch, capsys):
    def broken(*args, **kwargs):
        raise ValueError("cannot build\n  the data")

    monkeypatch.setattr("skcharclf.datasets.load_digit_chars", broken)
    # Not raised by one of the package's input checks: an unexpected error (status 1), still
    # one line, with the hint that --debug shows the traceback.
    assert main(["demo", "--quick"]) == 1
    err = capsys.readouterr().err
    assert err == (
        "skcharclf demo: unexpected error: ValueError: cannot build the data "
        "(run with --debug to see the traceback)\n"
    )


def test_table_alignment():
    table = format_table(["name", "value"], [["a", "0.5"], ["longer", "12.25"]])
    lines = table.splitlines()
    assert lines == ["name    value", "------  -----", "a         0.5", "longer  12.25"]


def test_python_m_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "skcharclf", "demo", "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "usage: skcharclf demo" in result.stdout
