"""Glue between the course's dense conventions and fastem's driver."""

import numpy as np

from .. import _pure
from .._data import as_observed
from .._em import Params, SufficientStats, mstep
from .common import GaussianMixture


def observed(X, missing_values):
    """CSR of the observed entries: 0 is missing (em), None: all observed."""
    return as_observed(np.asarray(X), missing_values=missing_values, dtype=np.float64)


def to_params(mixture):
    return Params(mixture.mu, mixture.var, mixture.p)


def to_mixture(params):
    return GaussianMixture(params.means, params.variances, params.weights)


def mstep_from_post(data, post, old_means, old_variances, *, min_variance,
                    mean_threshold):
    """M-step for given posteriors; returns (GaussianMixture, squared errors)."""
    post = np.ascontiguousarray(post, dtype=np.float64)
    if post.shape != (data.n_samples, old_means.shape[0]):
        raise ValueError(
            f"post must have shape {(data.n_samples, old_means.shape[0])}, got {post.shape}"
        )
    stats = SufficientStats(*old_means.shape)
    _pure.accumulate_stats(data.data, data.indices, data.indptr, old_means, post,
                           *stats.arrays())
    params, sq_error = mstep(stats, old_means, old_variances, data.n_samples,
                             min_variance=min_variance, mean_threshold=mean_threshold)
    return to_mixture(params), sq_error
