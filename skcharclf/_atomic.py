"""All-or-nothing operations: they either complete or change nothing.

* :func:`restore_on_failure` wraps an estimator's ``fit``: when the call does not complete
  (an error, a diverged training, Ctrl-C), the estimator is left exactly as it was before the
  call, so a failed re-fit cannot leave a half-trained model that still predicts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

__all__ = ["restore_on_failure"]

_Fit = TypeVar("_Fit", bound=Callable[..., Any])


def restore_on_failure(fit: _Fit) -> _Fit:
    """Decorate ``fit`` so that a call that does not complete leaves the estimator unchanged.

    The instance's attributes are saved before the call and put back when it raises anything,
    ``KeyboardInterrupt`` included: a fitted estimator keeps its previous fit, an unfitted one
    stays unfitted. The states of ``numpy.random.RandomState`` attributes (a ``random_state``
    parameter) are restored as well, so the next fit draws what it would have drawn.

    The save is shallow: ``fit`` must rebind its fitted attributes rather than change the
    objects they hold in place (a network trained further with ``warm_start`` is trained as a
    copy).
    """

    @functools.wraps(fit)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        saved = dict(vars(self))
        generators = [
            (value, value.get_state())
            for value in saved.values()
            if isinstance(value, np.random.RandomState)
        ]
        try:
            return fit(self, *args, **kwargs)
        except BaseException:
            vars(self).clear()
            vars(self).update(saved)
            for generator, state in generators:
                generator.set_state(state)
            raise

    return wrapper  # type: ignore[return-value]
