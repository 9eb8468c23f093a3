"""The EM driver: the iterations, the M-step from one pass's statistics, convergence.

Written once for every backend and for every place the data live: the data
source (``fastem._source.DataSource``) computes a pass; the loop, the M-step,
its checks and the convergence rule are here.
"""

from typing import NamedTuple

import numpy as np

from ._pass import COURSE_WEIGHT_FLOOR
from ._validation import Params

__all__ = ["EMResult", "mstep", "em_loop", "run_em"]


class EMResult(NamedTuple):
    """What one EM run returns: the parameters of its last M-step and the
    log-likelihood of its last E-step."""

    params: Params
    log_likelihood: float
    n_iter: int
    converged: bool


def mstep(stats, old_means, old_variances, n_samples, *, min_variance=0.25,
          mean_threshold=1.0):
    """New parameters from one pass's statistics (docs/model.md, sections 2, 4 and 5).

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


def em_loop(one_pass, params, n_samples, *, tol=1e-6, max_iter=None, min_variance=0.25,
            mean_threshold=1.0, callback=None):
    """The EM iterations, whatever computes the passes.

    ``one_pass(params)`` returns the :class:`SufficientStats` and the total
    log-likelihood of one fused pass over all ``n_samples`` rows; it may run
    in this process or on a cluster (``fastem.dask``). The
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


def run_em(source, params, *, tol=1e-6, max_iter=None, min_variance=0.25,
           mean_threshold=1.0, weight_floor=COURSE_WEIGHT_FLOOR, callback=None):
    """EM on a data source from ``params`` until LL_new - LL_old <= tol * |LL_new|.

    One iteration is one fused pass over the source (E-step and M-step
    statistics, :meth:`~fastem._source.DataSource.em_pass`) followed by the
    M-step. The callers check the settings (``fastem._validation``);
    ``max_iter=None`` runs until convergence, as the course does.
    ``callback(iteration, log_likelihood)`` is called after each iteration.

    Returns
    -------
    EMResult
        The parameters of the last M-step with the log-likelihood of the last
        E-step, as the course reports them.
    """
    def one_pass(params):
        return source.em_pass(params, weight_floor=weight_floor)

    return EMResult(*em_loop(one_pass, params, source.n_samples, tol=tol,
                             max_iter=max_iter, min_variance=min_variance,
                             mean_threshold=mean_threshold, callback=callback))
