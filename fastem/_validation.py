"""Every rule on settings, parameters and dtypes, in one place with one wording.

The estimator, the course facade, the command line and the model-file reader
all check their settings and parameters here, so that a rule (and its error
message) exists once. A failed check raises ``ValueError`` (``TypeError`` for
a value of the wrong kind) whose message names the setting and what to use
instead.
"""

import math
import numbers
import sys
from typing import NamedTuple

import numpy as np

__all__ = [
    "MAX_THREADS", "COVARIANCE_TYPES", "INIT_METHODS", "BACKENDS", "SETTINGS",
    "Params", "Settings", "is_int", "is_real", "invalid",
    "check_n_components", "check_covariance_type", "check_tol", "check_max_iter",
    "check_n_init", "check_init_params", "check_min_variance", "check_mean_prior_strength",
    "check_mean_prior", "check_fixed_variance", "check_missing_values", "check_positive",
    "check_non_negative",
    "check_random_state", "check_bool", "check_n_threads", "check_backend",
    "check_verbose", "check_fraction", "check_params", "check_initial", "check_fit_data",
    "value_dtype", "index_dtype",
]

# Upper bound of n_threads. Each thread owns K x d accumulators, and an OpenMP
# runtime asked for more threads than the system allows aborts the process.
MAX_THREADS = 1024
COVARIANCE_TYPES = ("spherical", "diag")
INIT_METHODS = ("k-means++", "random_from_data", "course")
BACKENDS = (None, "cython", "python")
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Params(NamedTuple):
    """Mixture parameters: means (K, d), variances (K,) spherical or (K, d) diag,
    weights (K,)."""

    means: np.ndarray
    variances: np.ndarray
    weights: np.ndarray


# ---------------------------------------------------------------------------
# single settings
# ---------------------------------------------------------------------------

def is_int(value):
    """An integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value):
    """A real number, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def invalid(name, value, requirement):
    """The ValueError of every setting: ``name=value is invalid: requirement``."""
    return ValueError(f"{name}={value!r} is invalid: {requirement}")


def _require(ok, name, value, requirement):
    if not ok:
        raise invalid(name, value, requirement)


def check_n_components(value, name="n_components"):
    """K: an int >= 1."""
    _require(is_int(value) and value >= 1, name, value, "use an int >= 1")
    return int(value)


def check_covariance_type(value):
    _require(isinstance(value, str) and value in COVARIANCE_TYPES, "covariance_type",
             value, f"use one of {COVARIANCE_TYPES}")
    return value


def check_tol(value):
    """The relative tolerance of the convergence rule: a float >= 0."""
    _require(is_real(value) and 0 <= value < math.inf, "tol", value,
             "use a relative tolerance >= 0 (0 runs max_iter iterations)")
    return float(value)


def check_max_iter(value, allow_none=False):
    """An int >= 1; None too (no bound) where ``allow_none``, as the course runs."""
    if allow_none and value is None:
        return None
    _require(is_int(value) and value >= 1, "max_iter", value,
             "use None or an int >= 1" if allow_none else "use an int >= 1")
    return int(value)


def check_n_init(value):
    _require(is_int(value) and value >= 1, "n_init", value,
             "use an int >= 1 (the number of restarts)")
    return int(value)


def check_init_params(value):
    _require(isinstance(value, str) and value in INIT_METHODS, "init_params", value,
             f"use one of {INIT_METHODS}")
    return value


def check_min_variance(value):
    """The variance floor: a float >= 0."""
    _require(is_real(value) and 0 <= value < math.inf, "min_variance", value,
             "use a variance floor >= 0 (the course uses 0.25)")
    return float(value)


def check_mean_prior_strength(value):
    """The strength of the prior on the means: a float >= 0 (0: no prior)."""
    _require(is_real(value) and 0 <= value < math.inf, "mean_prior_strength", value,
             "use a strength >= 0 (0: the course's maximum-likelihood means)")
    return float(value)


def check_positive(value, name):
    """A finite number > 0."""
    _require(is_real(value) and 0 < value < math.inf, name, value, "use a number > 0")
    return float(value)


def check_non_negative(value, name):
    """A finite number >= 0."""
    _require(is_real(value) and 0 <= value < math.inf, name, value, "use a number >= 0")
    return float(value)


def check_mean_prior(value):
    """The prior mean: a finite float, or a finite 1-D array (one per column)."""
    if is_real(value):
        _require(math.isfinite(value), "mean_prior", value,
                 "use a finite number or an array of one per column")
        return float(value)
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError):
        array = None
    _require(array is not None and array.ndim == 1 and array.size >= 1
             and np.isfinite(array).all(), "mean_prior", value,
             "use a finite number or an array of one per column")
    return array


def check_fixed_variance(value):
    """None (variances fitted) or the variance every component keeps: a float > 0."""
    _require(value is None or (is_real(value) and 0 < value < math.inf), "fixed_variance",
             value, "use None (variances fitted) or a variance > 0")
    return None if value is None else float(value)


def check_missing_values(value):
    _require(value is None or is_real(value), "missing_values", value,
             "use a number, np.nan, or None (nothing missing)")
    return value


def check_random_state(value, n_init=1):
    """None, a RandomState, or an int seed such that every restart's seed fits."""
    _require(value is None or isinstance(value, np.random.RandomState)
             or (is_int(value) and 0 <= value <= 2**32 - n_init), "random_state", value,
             "use None, a numpy RandomState, or an int in [0, 2**32 - n_init]")
    return int(value) if is_int(value) else value


def check_bool(value, name):
    _require(isinstance(value, (bool, np.bool_)), name, value, "use True or False")
    return bool(value)


def check_n_threads(value):
    """None (every core) or an int in [1, MAX_THREADS]."""
    _require(value is None or (is_int(value) and 1 <= value <= MAX_THREADS), "n_threads",
             value, f"use None (all cores) or an int in [1, {MAX_THREADS}]")
    return None if value is None else int(value)


def check_backend(value):
    _require(value in BACKENDS, "backend", value, "use None, 'cython' or 'python'")
    return value


def check_verbose(value):
    _require(is_int(value) and value >= 0, "verbose", value, "use 0, 1 or 2")
    return int(value)


def check_fraction(value, name):
    """A share strictly between 0 and 1."""
    _require(is_real(value) and 0 < value < 1, name, value, "use a share in (0, 1)")
    return float(value)


# ---------------------------------------------------------------------------
# the estimator's settings together
# ---------------------------------------------------------------------------

# The settings of GaussianMixture, each with its rule.
SETTINGS = {
    "n_components": check_n_components,
    "covariance_type": check_covariance_type,
    "tol": check_tol,
    "max_iter": check_max_iter,
    "n_init": check_n_init,
    "init_params": check_init_params,
    "min_variance": check_min_variance,
    "mean_prior_strength": check_mean_prior_strength,
    "mean_prior": check_mean_prior,
    "fixed_variance": check_fixed_variance,
    "missing_values": check_missing_values,
    "warm_start": lambda value: check_bool(value, "warm_start"),
    "n_threads": check_n_threads,
    "backend": check_backend,
    "verbose": check_verbose,
}


class Settings:
    """An estimator's settings, each checked by its rule (``random_state`` with
    ``n_init``); the initial arrays are checked where their shape is known
    (:func:`check_initial`).

    Parameters
    ----------
    params : dict
        The estimator's ``get_params()``.
    """

    def __init__(self, params):
        for name, rule in SETTINGS.items():
            setattr(self, name, rule(params[name]))
        self.random_state = check_random_state(params["random_state"], self.n_init)

    def restart_random_state(self, restart):
        """Random source of restart ``restart`` (0-based)."""
        if self.random_state is None:
            return np.random.mtrand._rand  # NumPy's global RandomState
        if isinstance(self.random_state, np.random.RandomState):
            return self.random_state
        return np.random.RandomState(self.random_state + restart)


# ---------------------------------------------------------------------------
# parameters
# ---------------------------------------------------------------------------

def check_initial(value, shape, name):
    """A user's initial array (``means_init``, ``variances_init``, ``weights_init``)."""
    try:
        array = np.array(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} must be an array of numbers ({exc})") from None
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} must be finite")
    if name.startswith("variances") and (array <= 0).any():
        raise ValueError(f"{name} must be positive")
    if name.startswith("weights"):
        if (array < 0).any():
            raise ValueError(f"{name} must be non-negative")
        if abs(array.sum() - 1.0) > 1e-6:
            raise ValueError(f"{name} must sum to 1, got {array.sum():.6g}; divide them "
                             "by their sum")
    return array


def check_params(params, n_features=None, covariance_type=None):
    """``params`` as C-contiguous float64 arrays of consistent shapes, or ValueError.

    ``n_features`` (the data's) and ``covariance_type``, when given, must
    agree with the means and the variances.
    """
    means, variances, weights = (np.ascontiguousarray(array, dtype=np.float64)
                                 for array in params)
    if means.ndim != 2 or means.shape[0] < 1 or means.shape[1] < 1:
        raise ValueError(f"means must have shape (n_components, n_features), got "
                         f"{means.shape}")
    n_components, d = means.shape
    if n_features is not None and d != n_features:
        raise ValueError(f"means have {d} features but the data have {n_features}")
    shapes = {"spherical": (n_components,), "diag": (n_components, d)}
    allowed = [shapes[covariance_type]] if covariance_type else list(shapes.values())
    if variances.shape not in allowed or weights.shape != (n_components,):
        kind = (f"covariance_type={covariance_type!r}" if covariance_type
                else "(spherical or diag)")
        raise ValueError(
            f"inconsistent shapes of the mixture parameters: means {means.shape}, "
            f"weights {weights.shape}, variances {variances.shape}; means of shape "
            f"{means.shape} need weights of shape ({n_components},) and variances of "
            f"shape {' or '.join(map(str, allowed))} {kind}")
    if not (np.isfinite(means).all() and np.isfinite(variances).all()
            and np.isfinite(weights).all()):
        raise ValueError("mixture parameters (means, variances, weights) must be finite")
    if (variances <= 0).any():
        raise ValueError(
            "variances must be positive; a variance of 0 means a component has "
            "collapsed onto its points (fit with min_variance > 0)")
    if (weights < 0).any() or not weights.sum() > 0:
        raise ValueError("mixture weights must be non-negative with a positive sum")
    return Params(means, variances, weights)


def check_fit_data(n_samples, n_features, nnz, largest):
    """Refuse data that EM cannot fit: nothing observed, or values too large.

    ``largest`` is the largest absolute observed value.
    """
    if nnz == 0:
        raise ValueError(
            f"X ({n_samples} x {n_features}) has no observed entry: every entry is "
            "missing, so there is nothing to fit; check missing_values (dense input) or "
            "pass the observed entries (sparse input)")
    # Squared deviations are summed over up to n * d entries (the course's
    # initialisation reads missing entries as 0): they must stay finite.
    terms = float(max(nnz, n_samples * n_features))
    if largest > 0 and (2.0 * math.log(2.0 * largest) + math.log(terms)
                        >= math.log(sys.float_info.max)):
        raise ValueError(
            f"X holds values up to {largest:.3g} in absolute value: sums of their "
            "squares overflow float64; rescale X (divide it by a power of 10)")


# ---------------------------------------------------------------------------
# dtypes
# ---------------------------------------------------------------------------

def value_dtype(dtype, given=None, what="X"):
    """The dtype of the observed values read from data of ``dtype``.

    float32 stays float32 and every other number becomes float64, unless
    ``given`` (float32 or float64) says otherwise. pandas' nullable dtypes
    count by their NumPy dtype.

    Raises
    ------
    TypeError
        For a dtype that holds no numbers, or a ``given`` that is not float32
        or float64.
    ValueError
        For complex numbers.
    """
    dtype = getattr(dtype, "numpy_dtype", dtype)
    if not isinstance(dtype, np.dtype):
        raise TypeError(f"{what} must hold numbers, got dtype {dtype}")
    if dtype.kind == "c":
        raise ValueError(f"Complex data not supported; {what} must hold real numbers")
    if dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold numbers, got dtype {dtype}")
    if given is not None:
        given = np.dtype(given)
        if given not in FLOAT_DTYPES:
            raise TypeError(f"dtype must be float32 or float64, got {given}")
        return given
    return np.dtype(np.float32) if dtype == np.float32 else np.dtype(np.float64)


def index_dtype(*sizes):
    """int32 when every size (nnz, number of columns, ...) fits in it, else int64."""
    return np.dtype(np.int32) if max(sizes, default=0) < 2**31 else np.dtype(np.int64)
