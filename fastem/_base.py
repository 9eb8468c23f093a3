"""The settings protocol of the estimators: ``get_params``, ``set_params``, ``repr``.

scikit-learn's conventions, without inheriting from scikit-learn: every
constructor argument is a setting stored as it was given, and checked at
``fit``.
"""

import inspect
import math

import numpy as np

__all__ = ["SettingsMixin"]


class SettingsMixin:
    """``get_params``, ``set_params`` and ``__repr__`` from the constructor's signature.

    ``_POSITIONAL`` names the setting a repr shows without its name (the
    first positional argument, as scikit-learn's reprs do not).
    """

    _POSITIONAL = "n_components"

    @classmethod
    def _param_names(cls):
        signature = inspect.signature(cls.__init__)
        return [name for name in signature.parameters if name != "self"]

    def get_params(self, deep=True):
        """The constructor parameters, as a dict (scikit-learn protocol).

        Parameters
        ----------
        deep : bool, default=True
            Unused: no parameter is itself an estimator.

        Returns
        -------
        dict
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set constructor parameters (scikit-learn protocol).

        Parameters
        ----------
        **params
            New values, checked at the next ``fit``.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For a name that is not a constructor parameter.
        """
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; "
                                 f"valid parameters are {valid}")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = inspect.signature(type(self).__init__).parameters
        changed = []
        for name in self._param_names():
            value, default = getattr(self, name), defaults[name].default
            if not same_setting(value, default):
                changed.append(repr(value) if name == self._POSITIONAL
                               else f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"


def same_setting(value, default):
    """Whether a setting equals its default (NaN equals NaN; types must match)."""
    if value is default:
        return True
    if isinstance(value, float) and isinstance(default, float):
        return value == default or (math.isnan(value) and math.isnan(default))
    if isinstance(value, np.ndarray) or isinstance(default, np.ndarray):
        return False
    try:
        return bool(value == default) and type(value) is type(default)
    except (TypeError, ValueError):
        return False
