"""The course's ``naive_em`` module: EM on complete data.

No missing entries, no mean-update threshold and no variance floor.
"""

from typing import Tuple

import numpy as np

from .._pass import estep as _estep, total_loglik
from ._shared import mstep_from_post, observed, run as _run, to_params
from .common import GaussianMixture

__all__ = ["estep", "mstep", "run"]


def estep(X: np.ndarray, mixture: GaussianMixture) -> Tuple[np.ndarray, float]:
    """E-step: posteriors (n, K) and the log-likelihood of complete data."""
    post, row_loglik = _estep(observed(X, None), to_params(mixture), weight_floor=0.0)
    return post, total_loglik(row_loglik)


def mstep(X: np.ndarray, post: np.ndarray) -> GaussianMixture:
    """M-step: weighted means, one pooled variance per component, weights."""
    data = observed(X, None)
    post = np.asarray(post, dtype=np.float64)
    if post.ndim != 2:
        raise ValueError(f"post must be 2-D (n, K), got shape {post.shape}")
    K = post.shape[1]
    mixture, _ = mstep_from_post(data, post, np.zeros((K, data.n_features)), np.ones(K),
                                 min_variance=0.0, mean_threshold=0.0)
    return mixture


def run(X: np.ndarray, mixture: GaussianMixture,
        post: np.ndarray) -> Tuple[GaussianMixture, np.ndarray, float]:
    """EM until ``LL_new - LL_old <= 1e-6 * |LL_new|``; ``post`` is not used."""
    data = observed(X, None)
    return _run(data, to_params(mixture, data.n_features), min_variance=0.0,
                mean_threshold=0.0, weight_floor=0.0)
