"""Docstring fragments shared by several public names, filled in when a module is imported.

A docstring holds a placeholder line ``%(name)s``, alone on its line; :func:`fill_doc` puts the
fragment ``name`` in its place, every line indented like the placeholder. The filled text is
what ``help()``, numpydoc and Sphinx's autodoc read, so one description of a parameter serves
every name that takes it, and the copies cannot drift apart.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from typing import TypeVar

__all__ = ["FLAT_X", "PREDICT_RETURNS", "PROBA_RETURNS", "fill_doc", "fill_docstring"]

_Documented = TypeVar("_Documented")
_PLACEHOLDER = re.compile(r"^(?P<indent>[ \t]*)%\((?P<name>\w+)\)s[ \t]*$", re.MULTILINE)

#: ``X`` of a method that takes the flat batch :class:`~skcharclf.ImageResizer` writes.
FLAT_X = """\
X : array-like of shape (n_samples, n_features)
    Rows of flattened images."""

#: What a classifier's ``predict`` returns.
PREDICT_RETURNS = """\
y_pred : ndarray of shape (n_samples,)
    Predicted class labels, from ``classes_``."""

#: What a classifier's ``predict_proba`` returns.
PROBA_RETURNS = """\
proba : ndarray of shape (n_samples, n_classes)
    Class probabilities, columns in the order of ``classes_``; rows sum to 1."""


def fill_docstring(doc: str, fragments: dict[str, str]) -> str:
    """``doc`` with every placeholder line replaced by its fragment.

    Parameters
    ----------
    doc : str
        A docstring whose placeholders ``%(name)s`` each stand alone on a line.
    fragments : dict of str to str
        The text of each placeholder, written without indentation (continuation lines indented
        relative to the first, as numpydoc wants a parameter's description). Fragments that
        ``doc`` does not use are ignored, so one table can serve a whole module.

    Returns
    -------
    doc : str

    Raises
    ------
    KeyError
        When a placeholder has no fragment (raised at import time, naming the placeholder).
    """

    def substitute(match: re.Match) -> str:
        name = match["name"]
        if name not in fragments:
            raise KeyError(f"docstring placeholder %({name})s has no fragment")
        return textwrap.indent(textwrap.dedent(fragments[name]).strip("\n"), match["indent"])

    return _PLACEHOLDER.sub(substitute, doc)


def fill_doc(**fragments: str) -> Callable[[_Documented], _Documented]:
    """Decorator: fill the placeholders of a function's or class's docstring.

    Parameters
    ----------
    **fragments : str
        The text of each placeholder ``%(name)s``, see :func:`fill_docstring`.

    Returns
    -------
    decorate : callable
        Fills the docstring of the function or class it is given in place and returns it
        (docstrings stripped by ``python -OO`` are left as they are).
    """

    def decorate(documented: _Documented) -> _Documented:
        if documented.__doc__ is not None:
            documented.__doc__ = fill_docstring(documented.__doc__, fragments)
        return documented

    return decorate
