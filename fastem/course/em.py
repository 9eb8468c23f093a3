"""The course's ``em`` module: EM on incomplete data, 0 = missing."""

from typing import Tuple

import numpy as np

from .._em import check_params, estep as _estep, run_em, total_loglik
from ._shared import check_min_variance, mstep_from_post, observed, to_mixture, to_params
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
    """M-step on the observed entries (SPEC section 2).

    A mean coordinate is updated only where its soft count is at least 1;
    variances are floored at ``min_variance``.
    """
    check_min_variance(min_variance)
    data = observed(X, 0)
    _check_something_observed(data)
    params = check_params(to_params(mixture), data.n_features)
    new_mixture, _ = mstep_from_post(data, post, params.means, params.variances,
                                     min_variance=min_variance, mean_threshold=1.0)
    return new_mixture


def run(X: np.ndarray, mixture: GaussianMixture,
        post: np.ndarray) -> Tuple[GaussianMixture, np.ndarray, float]:
    """EM until LL_new - LL_old <= 1e-6 * |LL_new|.

    ``post`` is accepted for the course's signature and not used.

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
    result = run_em(data, to_params(mixture))
    return to_mixture(result.params), result.post, result.log_likelihood


def fill_matrix(X: np.ndarray, mixture: GaussianMixture) -> np.ndarray:
    """Fill the missing (zero) entries of ``X`` with their posterior means.

    Observed entries are kept; entry (u, i) becomes sum_j post[u, j] mu[j, i].
    """
    data = observed(X, 0)  # checks X
    X = np.asarray(X)
    post, _ = _estep(data, to_params(mixture))
    X_pred = X.astype(np.float64, copy=True)
    missing = X == 0
    X_pred[missing] = (post @ mixture.mu)[missing]
    return X_pred
