"""The exceptions and warnings fastem raises, exported as ``fastem.<name>``."""

import sys

__all__ = ["ConvergenceWarning", "DuplicateRatingsWarning", "NotFittedError",
           "ModelFileError", "not_fitted_error"]


class ConvergenceWarning(UserWarning):
    """EM stopped at ``max_iter`` before meeting the ``tol`` criterion."""


class DuplicateRatingsWarning(UserWarning):
    """A rating file repeats (user, item) pairs and ``duplicates='last'`` dropped
    all but the last rating of each (the message says how many)."""


class NotFittedError(ValueError, AttributeError):
    """A method that needs fitted parameters was called before ``fit``.

    Raised as a subclass of scikit-learn's ``NotFittedError`` too when
    scikit-learn has been imported, so that either ``except`` clause works.
    """


class ModelFileError(ValueError):
    """A file that is not a valid fastem model file (or one too new to read)."""


def not_fitted_error(estimator, method):
    """The NotFittedError of calling ``method`` on an unfitted ``estimator`` (a name)."""
    message = (f"this {estimator} is not fitted yet; call fit(X) before "
               f"{method}(), or load a fitted model with fastem.load(path)")
    # Someone can only catch scikit-learn's class after importing it, so there
    # is no need to import scikit-learn here.
    sklearn_exceptions = sys.modules.get("sklearn.exceptions")
    if sklearn_exceptions is None:
        return NotFittedError(message)
    both = type("NotFittedError", (NotFittedError, sklearn_exceptions.NotFittedError),
                {"__module__": __name__})
    return both(message)
