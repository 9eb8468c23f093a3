"""Glue between the course's dense conventions and fastem's driver."""

import numbers

import numpy as np
import scipy.sparse as sp

from .. import _pure
from .._data import as_observed
from .._em import Params, SufficientStats, mstep
from .common import GaussianMixture


def observed(X, missing_values):
    """CSR of the observed entries: 0 is missing (em), None: all observed."""
    if sp.issparse(X):
        raise TypeError("the course's functions take dense arrays (0 marks a missing "
                        "entry); pass X.toarray(), or use fastem.GaussianMixture, which "
                        "takes sparse input")
    return as_observed(np.asarray(X), missing_values=missing_values, dtype=np.float64)


def to_params(mixture):
    if not all(hasattr(mixture, name) for name in ("mu", "var", "p")):
        raise TypeError(f"mixture must be a fastem.course.GaussianMixture(mu, var, p), "
                        f"got {type(mixture).__name__}")
    return Params(mixture.mu, mixture.var, mixture.p)


def check_post(post, shape):
    """``post`` as float64 (n, K) soft counts, or ValueError."""
    post = np.ascontiguousarray(post, dtype=np.float64)
    if post.shape != shape:
        raise ValueError(f"post must have shape {shape}, got {post.shape}")
    if not np.isfinite(post).all() or (post < 0).any():
        raise ValueError("post must hold finite, non-negative soft counts (the "
                         "posteriors of an E-step)")
    return post


def check_min_variance(min_variance):
    if (isinstance(min_variance, bool) or not isinstance(min_variance, numbers.Real)
            or not 0 <= min_variance < np.inf):
        raise ValueError(f"min_variance={min_variance!r} is invalid: use a variance "
                         "floor >= 0 (the course uses 0.25)")


def to_mixture(params):
    return GaussianMixture(params.means, params.variances, params.weights)


def mstep_from_post(data, post, old_means, old_variances, *, min_variance,
                    mean_threshold):
    """M-step for given posteriors; returns (GaussianMixture, squared errors)."""
    post = check_post(post, (data.n_samples, old_means.shape[0]))
    stats = SufficientStats(*old_means.shape)
    _pure.accumulate_stats(data.data, data.indices, data.indptr, old_means, post,
                           *stats.arrays())
    params, sq_error = mstep(stats, old_means, old_variances, data.n_samples,
                             min_variance=min_variance, mean_threshold=mean_threshold)
    return to_mixture(params), sq_error
