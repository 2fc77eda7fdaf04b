"""Shared docstring fragments: filled in at import time, with the placeholder's indentation."""

import inspect

import pytest

import skcharclf
from skcharclf import ensemble, losses
from skcharclf._docstring import FLAT_X, fill_doc, fill_docstring


def test_fragment_takes_the_indentation_of_its_placeholder():
    doc = "Summary.\n\n    Parameters\n    ----------\n    %(X)s\n    y : None\n"
    filled = fill_docstring(doc, {"X": "X : array\n    The rows.", "unused": "ignored"})
    assert filled == (
        "Summary.\n\n    Parameters\n    ----------\n    X : array\n        The rows.\n"
        "    y : None\n"
    )


def test_placeholder_without_fragment_is_an_error_naming_it():
    with pytest.raises(KeyError, match=r"%\(proba\)s"):
        fill_docstring("Summary.\n\n    %(proba)s\n", {"X": FLAT_X})


def test_percent_signs_elsewhere_are_left_alone():
    doc = "40 % of the images; %(X)s inside a sentence is not a placeholder.\n"
    assert fill_docstring(doc, {"X": FLAT_X}) == doc


def test_decorator_fills_and_returns_the_function():
    @fill_doc(X=FLAT_X)
    def predict(X):
        """Predict.

        Parameters
        ----------
        %(X)s
        """

    assert inspect.getdoc(predict) == (
        "Predict.\n\nParameters\n----------\n"
        "X : array-like of shape (n_samples, n_features)\n    Rows of flattened images."
    )


def _public_docstrings():
    for module in (skcharclf, losses, ensemble):
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name)
            yield f"{module.__name__}.{name}", obj.__doc__
            if inspect.isclass(obj):
                for attribute, member in vars(obj).items():
                    if callable(member) and not attribute.startswith("_"):
                        yield f"{module.__name__}.{name}.{attribute}", member.__doc__


def test_no_placeholder_is_left_in_a_public_docstring():
    unfilled = [name for name, doc in _public_docstrings() if doc and "%(" in doc]
    assert unfilled == []
