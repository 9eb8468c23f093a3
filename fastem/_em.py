"""The EM driver: the iterations, the M-step from one pass's statistics, convergence.

Written once for every backend and for every place the data live: the data
source (``fastem._source.DataSource``) computes a pass; the loop, the M-step,
its checks and the convergence rule are here.
"""

from typing import NamedTuple

import numpy as np

from ._pass import COURSE_WEIGHT_FLOOR
from ._validation import Params

__all__ = ["EMResult", "MeanPrior", "mstep", "log_prior", "em_loop", "run_em"]


class MeanPrior(NamedTuple):
    """A Normal prior on each mean coordinate (docs/model.md, section 8).

    ``mu[j, i] ~ N(mean[i], var[j, i] / strength)``: the M-step's mean is
    ``(S1[j, i] + strength * mean[i]) / (N[j, i] + strength)`` in every
    column, instead of the course's rule. ``mean`` is a float or an array of
    shape (n_features,).
    """

    strength: float
    mean: object = 0.0


class EMResult(NamedTuple):
    """What one EM run returns: the parameters of its last M-step and the
    log-likelihood of its last E-step."""

    params: Params
    log_likelihood: float
    n_iter: int
    converged: bool


def mstep(stats, old_means, old_variances, n_samples, *, min_variance=0.25,
          mean_threshold=1.0, prior=None, fixed_variance=None):
    """New parameters from one pass's statistics (docs/model.md, sections 2, 4 and 5).

    A mean coordinate moves only where its soft count N[j, i] reaches
    ``mean_threshold`` (and is positive); with a ``prior`` (:class:`MeanPrior`)
    every coordinate moves to its MAP value instead. ``fixed_variance`` (a
    float) holds every variance at that value, floor or not. A spherical variance whose component
    saw no observed entry keeps its old value; a diag variance follows its
    mean's rule. Variances are floored at ``min_variance``.

    Returns
    -------
    params : Params
    sq_error : ndarray of shape (n_components,) or (n_components, n_features), or None
        sum_u post[u, j] |x_u - new_means[j]|^2 over the observed entries
        (spherical), or its terms per column (diag); None with a
        ``fixed_variance``, which needs none.
    """
    counts = stats.resp_obs_sum
    x_sums = stats.resp_x_sum
    update = (counts >= mean_threshold) & (counts > 0)
    if prior is None:
        means = old_means.copy()
        np.divide(x_sums, counts, out=means, where=update)
    else:  # MAP: every coordinate, shrunk towards the prior mean
        means = (x_sums + prior.strength * np.asarray(prior.mean, dtype=np.float64)) / (
            counts + prior.strength)
    weights = stats.resp_sum / n_samples
    if fixed_variance is not None:  # nothing to estimate: no squared errors
        return Params(means, np.full(old_variances.shape, float(fixed_variance)),
                      weights), None
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


def log_prior(prior, params):
    """log p(means) under ``prior``, up to a constant; 0 without a prior.

    The prior variance of mean coordinate (j, i) is the component's variance
    over the prior's strength, as in :class:`MeanPrior`.
    """
    if prior is None:
        return 0.0
    means, variances, _ = params
    deviations = means - np.asarray(prior.mean, dtype=np.float64)
    if variances.ndim == 2:
        return -0.5 * prior.strength * float(np.sum(deviations * deviations / variances))
    squares = np.einsum("ji,ji->j", deviations, deviations)
    return -0.5 * prior.strength * float(np.sum(squares / variances))


def em_loop(one_pass, params, n_samples, *, tol=1e-6, max_iter=None, min_variance=0.25,
            mean_threshold=1.0, prior=None, fixed_variance=None, callback=None):
    """The EM iterations, whatever computes the passes.

    ``one_pass(params)`` returns the :class:`SufficientStats` and the total
    log-likelihood of one fused pass over all ``n_samples`` rows; it may run
    in this process or on a cluster (``fastem.dask``). The
    M-step, its checks and the convergence rule are the same for both.

    The convergence rule compares the objective EM increases: the
    log-likelihood, plus :func:`log_prior` of the E-step's parameters with a
    ``prior`` (MAP). ``callback(iteration, log_likelihood)`` is called after
    each iteration.

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
        objective = log_likelihood + log_prior(prior, params)
        params, _ = mstep(stats, params.means, params.variances, n_samples,
                          min_variance=min_variance, mean_threshold=mean_threshold,
                          prior=prior, fixed_variance=fixed_variance)
        n_iter += 1
        _check_mstep(params, n_iter)
        if callback is not None:
            callback(n_iter, log_likelihood)
        if previous is not None and objective - previous <= tol * abs(objective):
            converged = True
            break
        previous = objective
    return params, log_likelihood, n_iter, converged


def run_em(source, params, *, tol=1e-6, max_iter=None, min_variance=0.25,
           mean_threshold=1.0, weight_floor=COURSE_WEIGHT_FLOOR, prior=None,
           fixed_variance=None, callback=None):
    """EM on a data source from ``params`` until the objective converges.

    One iteration is one fused pass over the source (E-step and M-step
    statistics, :meth:`~fastem._source.DataSource.em_pass`) followed by the
    M-step. The callers check the settings (``fastem._validation``);
    ``max_iter=None`` runs until convergence, as the course does; ``prior``
    and ``fixed_variance`` are the MAP options of :func:`mstep`.
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
                             mean_threshold=mean_threshold, prior=prior,
                             fixed_variance=fixed_variance, callback=callback))
