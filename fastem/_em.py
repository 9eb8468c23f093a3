"""The EM driver: buffers, kernel calls, the M-step from statistics, convergence.

Written once for both backends: a kernel call is one pass over the observed
entries; everything else lives here.
"""

from typing import NamedTuple

import numpy as np

from ._backend import effective_n_threads, get_backend
from ._data import ObservedData

__all__ = [
    "Params",
    "SufficientStats",
    "EMResult",
    "check_params",
    "check_row_loglik",
    "log_weights",
    "total_loglik",
    "exact_sum",
    "exact_to_float",
    "estep",
    "sq_distances",
    "fused_pass",
    "make_workspace",
    "mstep",
    "check_loop_settings",
    "em_loop",
    "run_em",
]

# The course scores a component with log(p_j + 1e-16), so that a component of
# weight 0 stays finite.
COURSE_WEIGHT_FLOOR = 1e-16


class Params(NamedTuple):
    """Mixture parameters: means (K, d), variances (K,) spherical or (K, d) diag,
    weights (K,)."""

    means: np.ndarray
    variances: np.ndarray
    weights: np.ndarray


class SufficientStats:
    """Per-pass sums over the observed entries (SPEC sections 4 and 5), float64.

    ``resp_sq_sum`` is R_j, shape (K,), for the spherical model and Q[j, i],
    shape (K, d), for the diag model (``diag=True``).
    """

    __slots__ = ("resp_sum", "resp_x_sum", "resp_obs_sum", "resp_sq_sum")

    def __init__(self, n_components, n_features, diag=False):
        self.resp_sum = np.zeros(n_components)
        self.resp_x_sum = np.zeros((n_components, n_features))
        self.resp_obs_sum = np.zeros((n_components, n_features))
        self.resp_sq_sum = np.zeros((n_components, n_features) if diag else n_components)

    def arrays(self):
        return (self.resp_sum, self.resp_x_sum, self.resp_obs_sum, self.resp_sq_sum)

    @classmethod
    def from_arrays(cls, resp_sum, resp_x_sum, resp_obs_sum, resp_sq_sum):
        """Statistics holding the given arrays (e.g. sums over row blocks)."""
        stats = cls.__new__(cls)
        stats.resp_sum, stats.resp_x_sum = resp_sum, resp_x_sum
        stats.resp_obs_sum, stats.resp_sq_sum = resp_obs_sum, resp_sq_sum
        return stats


class EMResult(NamedTuple):
    params: Params
    post: np.ndarray
    log_likelihood: float
    n_iter: int
    converged: bool


def check_params(params, n_features):
    """Return ``params`` as C-contiguous float64 arrays, or raise ValueError."""
    means = np.ascontiguousarray(params.means, dtype=np.float64)
    variances = np.ascontiguousarray(params.variances, dtype=np.float64)
    weights = np.ascontiguousarray(params.weights, dtype=np.float64)
    if means.ndim != 2 or means.shape[0] < 1:
        raise ValueError(f"means must have shape (n_components, n_features), got {means.shape}")
    n_components = means.shape[0]
    if means.shape[1] != n_features:
        raise ValueError(
            f"means have {means.shape[1]} features but the data have {n_features}"
        )
    if variances.shape not in ((n_components,), (n_components, n_features)):
        raise ValueError(
            f"variances must have shape ({n_components},) (spherical) or "
            f"({n_components}, {n_features}) (diag), got {variances.shape}"
        )
    if weights.shape != (n_components,):
        raise ValueError(f"weights must have shape ({n_components},), got {weights.shape}")
    if not (np.isfinite(means).all() and np.isfinite(variances).all()
            and np.isfinite(weights).all()):
        raise ValueError("mixture parameters (means, variances, weights) must be finite")
    if (variances <= 0).any():
        raise ValueError(
            "variances must be positive; a variance of 0 means a component has "
            "collapsed onto its points (fit with min_variance > 0)"
        )
    if (weights < 0).any() or not weights.sum() > 0:
        raise ValueError("mixture weights must be non-negative with a positive sum")
    return Params(means, variances, weights)


def check_row_loglik(row_loglik, first_row=0):
    """Raise ValueError unless every row's log-likelihood is finite.

    A row's log-likelihood is -inf (and its posteriors NaN) only when its
    squared distance to every mean, over the variance, overflows float64.
    ``first_row`` numbers the rows of a block as rows of the whole matrix.
    """
    bad = ~np.isfinite(row_loglik)
    if bad.any():
        row = first_row + int(np.argmax(bad))
        raise ValueError(
            f"the log-likelihood of row {row} is not finite: its squared distances "
            "to the component means, divided by the variances, overflow float64; "
            "rescale X (divide it by a power of 10) or raise min_variance")


# Every finite float64 times 2**1127 is an integer: x = M * 2**(e - 53) with
# |M| < 2**53 and e >= -1073 (frexp).
_EXACT_SCALE = 1127
_EXACT_BINS = 2098
_EXACT_CHUNK = 1 << 30  # pieces < 2**18: sums of 2**30 of them stay below 2**53


def exact_sum(values, *, backend=None):
    """The exact sum of finite float64 values, as the int ``sum * 2**1127``.

    Sums of blocks added as ints and rounded once by :func:`exact_to_float`
    give what ``math.fsum`` gives over all the values (an exactly rounded
    sum), however the values were split into blocks.
    """
    values = np.ascontiguousarray(values, dtype=np.float64).ravel()
    kernels = get_backend(backend)
    total = 0
    for start in range(0, values.shape[0], _EXACT_CHUNK):
        # Integer pieces of the mantissas summed per exponent in float64
        # (exactly: they stay below 2**53), then shifted into place as ints.
        pieces = np.zeros((3, _EXACT_BINS))
        kernels.exact_sum_pieces(values[start:start + _EXACT_CHUNK], pieces)
        for k in range(3):
            for b in np.flatnonzero(pieces[k]):
                total += int(pieces[k, b]) << int(b + 1 + 18 * k)
    return total


def exact_to_float(total):
    """``total * 2**-1127`` rounded to the nearest float64 (see :func:`exact_sum`)."""
    try:
        return total / (1 << _EXACT_SCALE)  # int / int is correctly rounded
    except OverflowError:
        raise ValueError("the total log-likelihood overflows float64; rescale X "
                         "(divide it by a power of 10)") from None


def total_loglik(row_loglik):
    """Exactly rounded sum: independent of how rows were split among threads or blocks."""
    check_row_loglik(row_loglik)
    return exact_to_float(exact_sum(row_loglik))


def log_weights(weights, weight_floor):
    with np.errstate(divide="ignore"):
        return np.log(weights + weight_floor)


def _check_buffer(array, shape, name):
    if (not isinstance(array, np.ndarray) or array.dtype != np.float64
            or array.shape != shape or not array.flags.c_contiguous
            or not array.flags.writeable):
        raise ValueError(f"{name} must be a writeable C-contiguous float64 array of shape {shape}")


def _check_data(X):
    if not isinstance(X, ObservedData):
        raise TypeError("kernels take ObservedData; convert with fastem._data.as_observed")


def estep(X, params, *, weight_floor=COURSE_WEIGHT_FLOOR, backend=None,
          n_threads=None, post=None, row_loglik=None, first_row=0):
    """Posteriors and per-row log-likelihoods of ``X`` under ``params``.

    ``first_row`` numbers the rows of ``X`` in error messages (for a block
    of a larger matrix).

    Returns
    -------
    post : ndarray of shape (n_samples, n_components)
    row_loglik : ndarray of shape (n_samples,)
    """
    _check_data(X)
    params = check_params(params, X.n_features)
    n_components = params.means.shape[0]
    post = np.empty((X.n_samples, n_components)) if post is None else post
    row_loglik = np.empty(X.n_samples) if row_loglik is None else row_loglik
    _check_buffer(post, (X.n_samples, n_components), "post")
    _check_buffer(row_loglik, (X.n_samples,), "row_loglik")
    kernels = get_backend(backend)
    kernels.estep_pass(
        X.data, X.indices, X.indptr, params.means, params.variances,
        log_weights(params.weights, weight_floor), post, row_loglik,
        effective_n_threads(n_threads, kernels),
    )
    check_row_loglik(row_loglik, first_row)  # never NaN posteriors
    return post, row_loglik


def sq_distances(X, centres, *, backend=None, n_threads=None, out=None):
    """Squared distances of the rows of ``X`` to each centre, over their observed entries.

    Returns
    -------
    out : ndarray of shape (n_samples, n_centres)
        out[u, j] = sum over the observed columns i of row u of
        (x_ui - centres[j, i])^2; 0 for a row with no observed entry.
    """
    _check_data(X)
    centres = np.ascontiguousarray(np.atleast_2d(centres), dtype=np.float64)
    if centres.ndim != 2 or centres.shape[1] != X.n_features or centres.shape[0] < 1:
        raise ValueError(f"centres must have shape (n_centres >= 1, {X.n_features}), "
                         f"got {centres.shape}")
    if not np.isfinite(centres).all():
        raise ValueError("centres must be finite")
    out = np.empty((X.n_samples, centres.shape[0])) if out is None else out
    _check_buffer(out, (X.n_samples, centres.shape[0]), "out")
    kernels = get_backend(backend)
    kernels.sq_distances(X.data, X.indices, X.indptr, centres, out,
                         effective_n_threads(n_threads, kernels))
    return out


def fused_pass(X, params, post, row_loglik, stats, *, weight_floor=COURSE_WEIGHT_FLOOR,
               hard=False, backend=None, n_threads=None, workspace=None):
    """One pass: E-step into ``post``/``row_loglik``, M-step sums into ``stats``.

    ``workspace`` (from :func:`make_workspace`) is scratch memory kept across
    iterations; None allocates it for this call.
    """
    _check_data(X)
    params = check_params(params, X.n_features)
    n_components = params.means.shape[0]
    _check_buffer(post, (X.n_samples, n_components), "post")
    _check_buffer(row_loglik, (X.n_samples,), "row_loglik")
    _check_buffer(stats.resp_sum, (n_components,), "resp_sum")
    _check_buffer(stats.resp_x_sum, (n_components, X.n_features), "resp_x_sum")
    _check_buffer(stats.resp_obs_sum, (n_components, X.n_features), "resp_obs_sum")
    _check_buffer(stats.resp_sq_sum, params.variances.shape, "resp_sq_sum")
    kernels = get_backend(backend)
    kernels.fused_pass(
        X.data, X.indices, X.indptr, params.means, params.variances,
        log_weights(params.weights, weight_floor), bool(hard), post, row_loglik,
        *stats.arrays(), effective_n_threads(n_threads, kernels), workspace,
    )


def make_workspace(n_components, n_features, *, diag=False, backend=None,
                   n_threads=None):
    """Scratch memory for :func:`fused_pass`, to allocate once per fit."""
    kernels = get_backend(backend)
    size = kernels.workspace_size(n_components, n_features,
                                  effective_n_threads(n_threads, kernels), diag)
    return np.empty(size) if size else None


def mstep(stats, old_means, old_variances, n_samples, *, min_variance=0.25,
          mean_threshold=1.0):
    """New parameters from one pass's statistics (SPEC sections 2, 4 and 5).

    A mean coordinate moves only where its soft count N[j, i] reaches
    ``mean_threshold`` (and is positive). A spherical variance whose component
    saw no observed entry keeps its old value; a diag variance follows its
    mean's rule. Variances are floored at ``min_variance``.

    Returns
    -------
    params : Params
    sq_error : ndarray of shape (n_components,) or (n_components, n_features)
        sum_u post[u, j] |x_u - new_means[j]|^2 over the observed entries
        (spherical), or its terms per column (diag).
    """
    counts = stats.resp_obs_sum
    x_sums = stats.resp_x_sum
    update = (counts >= mean_threshold) & (counts > 0)
    means = old_means.copy()
    np.divide(x_sums, counts, out=means, where=update)
    shift = means - old_means
    # Exact re-centring of the squared error from the old means to the new.
    correction = shift * (shift * counts - 2.0 * (x_sums - old_means * counts))
    variances = old_variances.copy()
    if old_variances.ndim == 2:
        sq_error = np.maximum(stats.resp_sq_sum + correction, 0.0)
        np.divide(sq_error, counts, out=variances, where=update)
    else:
        sq_error = np.maximum(stats.resp_sq_sum + correction.sum(axis=1), 0.0)
        total_counts = counts.sum(axis=1)
        np.divide(sq_error, total_counts, out=variances, where=total_counts > 0)
    np.maximum(variances, min_variance, out=variances)
    weights = stats.resp_sum / n_samples
    return Params(means, variances, weights), sq_error


def _check_mstep(params, iteration):
    # Checked here rather than at the next E-step, so that a fit never
    # returns such parameters and the message says what happened.
    if not all(np.isfinite(array).all() for array in params):
        raise ValueError(
            f"the M-step of iteration {iteration} gave parameters that are not "
            "finite: sums of squared deviations overflow float64; rescale X "
            "(divide it by a power of 10)")
    if (params.variances <= 0).any():
        component = int(np.argwhere(params.variances <= 0)[0][0])
        raise ValueError(
            f"component {component} collapsed onto identical points at iteration "
            f"{iteration}: its variance is 0 and its likelihood unbounded; fit with "
            "a variance floor, min_variance > 0 (the course uses 0.25)")


def check_loop_settings(tol, max_iter):
    """Raise ValueError unless ``tol`` and ``max_iter`` can drive :func:`em_loop`."""
    if max_iter is not None and (isinstance(max_iter, bool) or not isinstance(max_iter, int)
                                 or max_iter < 1):
        raise ValueError(f"max_iter must be None or an int >= 1, got {max_iter!r}")
    if not tol >= 0:
        raise ValueError(f"tol must be >= 0, got {tol!r}")


def em_loop(one_pass, params, n_samples, *, tol=1e-6, max_iter=None, min_variance=0.25,
            mean_threshold=1.0, callback=None):
    """The EM iterations, whatever computes the passes.

    ``one_pass(params)`` returns the :class:`SufficientStats` and the total
    log-likelihood of one fused pass over all ``n_samples`` rows; it may run
    in this process (:func:`run_em`) or on a cluster (``fastem._dask``). The
    M-step, its checks and the convergence rule are the same for both.

    Returns
    -------
    params : Params
        Those of the last M-step.
    log_likelihood : float
        That of the last pass (E-step).
    n_iter : int
    converged : bool
    """
    previous = None
    n_iter = 0
    converged = False
    while max_iter is None or n_iter < max_iter:
        stats, log_likelihood = one_pass(params)
        params, _ = mstep(stats, params.means, params.variances, n_samples,
                          min_variance=min_variance, mean_threshold=mean_threshold)
        n_iter += 1
        _check_mstep(params, n_iter)
        if callback is not None:
            callback(n_iter, log_likelihood)
        if previous is not None and log_likelihood - previous <= tol * abs(log_likelihood):
            converged = True
            break
        previous = log_likelihood
    return params, log_likelihood, n_iter, converged


def run_em(X, params, *, tol=1e-6, max_iter=None, min_variance=0.25,
           mean_threshold=1.0, weight_floor=COURSE_WEIGHT_FLOOR, backend=None,
           n_threads=None, callback=None):
    """EM from ``params`` until LL_new - LL_old <= tol * |LL_new|.

    One loop iteration is one fused pass (E-step and M-step statistics)
    followed by the M-step. Returns the parameters of the last M-step with
    the posteriors and log-likelihood of the last E-step, as the course does.
    ``callback(iteration, log_likelihood)`` is called after each iteration.
    """
    _check_data(X)
    check_loop_settings(tol, max_iter)
    params = check_params(params, X.n_features)
    kernels = get_backend(backend)
    n_threads = effective_n_threads(n_threads, kernels)
    n_components = params.means.shape[0]
    post = np.empty((X.n_samples, n_components))
    row_loglik = np.empty(X.n_samples)
    diag = params.variances.ndim == 2
    stats = SufficientStats(n_components, X.n_features, diag)
    workspace = make_workspace(n_components, X.n_features, diag=diag, backend=backend,
                               n_threads=n_threads)

    def one_pass(params):
        fused_pass(X, params, post, row_loglik, stats, weight_floor=weight_floor,
                   backend=backend, n_threads=n_threads, workspace=workspace)
        return stats, total_loglik(row_loglik)

    params, log_likelihood, n_iter, converged = em_loop(
        one_pass, params, X.n_samples, tol=tol, max_iter=max_iter,
        min_variance=min_variance, mean_threshold=mean_threshold, callback=callback)
    return EMResult(params, post, log_likelihood, n_iter, converged)
