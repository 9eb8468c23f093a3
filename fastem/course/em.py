"""The course's ``em`` module: EM on incomplete data, 0 = missing."""

from typing import Tuple

import numpy as np

from .._pass import estep as _estep, total_loglik
from .._predictions import completed
from .._validation import check_min_variance
from ._shared import mstep_from_post, observed, run as _run, to_params
from .common import GaussianMixture

__all__ = ["estep", "mstep", "run", "fill_matrix"]


def _check_something_observed(data):
    if data.nnz == 0:
        raise ValueError("X has no observed entry: every entry is 0, the course's mark "
                         "of a missing entry; there is nothing to fit")


def estep(X: np.ndarray, mixture: GaussianMixture) -> Tuple[np.ndarray, float]:
    """E-step over the observed (non-zero) entries.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Data, 0 marking missing entries.
    mixture : GaussianMixture
        The current parameters.

    Returns
    -------
    post : ndarray of shape (n, K)
        Posterior probabilities (soft counts).
    log_likelihood : float
        Log-likelihood of the observed entries.
    """
    post, row_loglik = _estep(observed(X, 0), to_params(mixture))
    return post, total_loglik(row_loglik)


def mstep(X: np.ndarray, post: np.ndarray, mixture: GaussianMixture,
          min_variance: float = .25) -> GaussianMixture:
    """M-step on the observed entries (docs/model.md, section 2).

    A mean coordinate is updated only where its soft count is at least 1;
    variances are floored at ``min_variance``.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Data, 0 marking missing entries.
    post : ndarray of shape (n, K)
        Posteriors of the E-step.
    mixture : GaussianMixture
        The current parameters: a mean coordinate whose soft count is below
        1 keeps its value.
    min_variance : float, default=0.25
        Floor of the variances.

    Returns
    -------
    GaussianMixture
        The new parameters.
    """
    check_min_variance(min_variance)
    data = observed(X, 0)
    _check_something_observed(data)
    params = to_params(mixture, data.n_features)
    new_mixture, _ = mstep_from_post(data, post, params.means, params.variances,
                                     min_variance=min_variance, mean_threshold=1.0)
    return new_mixture


def run(X: np.ndarray, mixture: GaussianMixture,
        post: np.ndarray) -> Tuple[GaussianMixture, np.ndarray, float]:
    """EM until ``LL_new - LL_old <= 1e-6 * |LL_new|``.

    ``post`` is accepted for the course's signature and not used.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Data, 0 marking missing entries.
    mixture : GaussianMixture
        The initial parameters.
    post : ndarray of shape (n, K)
        Not used.

    Returns
    -------
    mixture : GaussianMixture
        The mixture of the last M-step.
    post : ndarray of shape (n, K)
        Posteriors of the last E-step.
    log_likelihood : float
        Log-likelihood of the last E-step.
    """
    data = observed(X, 0)
    _check_something_observed(data)
    return _run(data, to_params(mixture, data.n_features))


def fill_matrix(X: np.ndarray, mixture: GaussianMixture) -> np.ndarray:
    """Fill the missing (zero) entries of ``X`` with their posterior means.

    Observed entries are kept; entry (u, i) becomes ``sum_j post[u, j] mu[j, i]``.

    Parameters
    ----------
    X : ndarray of shape (n, d)
        Data, 0 marking missing entries.
    mixture : GaussianMixture
        Fitted parameters.

    Returns
    -------
    ndarray of shape (n, d)
        The completed matrix.
    """
    data = observed(X, 0)  # checks X
    params = to_params(mixture, data.n_features)
    post, _ = _estep(data, params)
    return completed(data, post, params.means)
