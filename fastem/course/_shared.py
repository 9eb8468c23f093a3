"""Glue between the course's dense conventions and fastem's driver.

The course's functions run on the same layers as the estimator: the
observed entries (``fastem._observed``), the kernels through the backend
switch (``fastem._pass``, so ``FASTEM_BACKEND`` holds here too), the
in-memory data source and the EM driver.
"""

import numpy as np
import scipy.sparse as sp

from .._em import mstep
from .._memory import run_em
from .._observed import as_observed
from .._pass import accumulate_stats
from .._validation import Params, check_params
from .common import GaussianMixture


def observed(X, missing_values):
    """CSR of the observed entries: 0 is missing (em), None: all observed."""
    if sp.issparse(X):
        raise TypeError("the course's functions take dense arrays (0 marks a missing "
                        "entry); pass X.toarray(), or use fastem.GaussianMixture, which "
                        "takes sparse input")
    return as_observed(np.asarray(X), missing_values=missing_values, dtype=np.float64)


def to_params(mixture, n_features=None):
    """The course's mixture as checked Params (``n_features``: the data's)."""
    if not all(hasattr(mixture, name) for name in ("mu", "var", "p")):
        raise TypeError(f"mixture must be a fastem.course.GaussianMixture(mu, var, p), "
                        f"got {type(mixture).__name__}")
    return check_params(Params(mixture.mu, mixture.var, mixture.p), n_features)


def check_post(post, shape):
    """``post`` as float64 (n, K) soft counts, or ValueError."""
    post = np.ascontiguousarray(post, dtype=np.float64)
    if post.shape != shape:
        raise ValueError(f"post must have shape {shape}, got {post.shape}")
    if not np.isfinite(post).all() or (post < 0).any():
        raise ValueError("post must hold finite, non-negative soft counts (the "
                         "posteriors of an E-step)")
    return post


def to_mixture(params):
    return GaussianMixture(params.means, params.variances, params.weights)


def mstep_from_post(data, post, old_means, old_variances, *, min_variance,
                    mean_threshold):
    """M-step for given posteriors; returns (GaussianMixture, squared errors)."""
    post = check_post(post, (data.n_samples, old_means.shape[0]))
    stats = accumulate_stats(data, post, old_means)
    params, sq_error = mstep(stats, old_means, old_variances, data.n_samples,
                             min_variance=min_variance, mean_threshold=mean_threshold)
    return to_mixture(params), sq_error


def run(data, params, **settings):
    """EM on ``data`` in memory; returns (GaussianMixture, post, log-likelihood).

    The posteriors are those of the last E-step, as the course returns them.
    """
    result = run_em(data, params, **settings)
    return to_mixture(result.params), result.post, result.log_likelihood
