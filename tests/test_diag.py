"""The diagonal-covariance model (docs/model.md, section 5) in both backends."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose

from fastem import _em, _memory, _pass, _validation, as_observed

WEIGHT_FLOOR = 1e-16


def _problem(seed, n_samples, n_features, n_components, missing_rate, offset=0.0):
    rng = np.random.default_rng(seed)
    X = offset + rng.integers(1, 6, size=(n_samples, n_features)) + rng.normal(
        0, 0.4, size=(n_samples, n_features))
    X[rng.random(X.shape) < missing_rate] = np.nan
    params = _validation.Params(
        offset + rng.uniform(1, 5, size=(n_components, n_features)),
        rng.uniform(0.3, 3.0, size=(n_components, n_features)),
        rng.dirichlet(np.ones(n_components)),
    )
    return X, params


def _oracle_iteration(X, params, min_variance):
    """One E-step and M-step written out literally on the dense matrix."""
    mask = ~np.isnan(X)
    x = np.where(mask, X, 0.0)
    K = params.means.shape[0]
    log_joint = np.empty((X.shape[0], K))
    for j in range(K):
        var = params.variances[j]
        terms = np.log(2 * np.pi * var) + (x - params.means[j]) ** 2 / var
        log_joint[:, j] = np.log(params.weights[j] + WEIGHT_FLOOR) - 0.5 * (terms * mask).sum(1)
    top = log_joint.max(axis=1, keepdims=True)
    row_loglik = top[:, 0] + np.log(np.exp(log_joint - top).sum(axis=1))
    post = np.exp(log_joint - row_loglik[:, None])
    counts = post.T @ mask
    update = counts >= 1
    means = params.means.copy()
    means[update] = (post.T @ x)[update] / counts[update]
    variances = params.variances.copy()
    for j in range(K):
        sq = post[:, j] @ ((x - means[j]) ** 2 * mask)
        variances[j][update[j]] = sq[update[j]] / counts[j][update[j]]
    variances = np.maximum(variances, min_variance)
    new = _validation.Params(means, variances, post.sum(axis=0) / X.shape[0])
    return post, row_loglik, new


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_samples=st.integers(1, 60),
       n_features=st.integers(1, 10), n_components=st.integers(1, 6),
       missing_rate=st.sampled_from([0.0, 0.4, 0.9, 1.0]),
       offset=st.sampled_from([0.0, 100.0]))
def test_iteration_matches_dense_oracle(backend, seed, n_samples, n_features,
                                        n_components, missing_rate, offset):
    X, params = _problem(seed, n_samples, n_features, n_components, missing_rate, offset)
    data = as_observed(X)
    post, row_loglik, expected = _oracle_iteration(X, params, min_variance=0.25)
    got_post, got_loglik = _pass.estep(data, params, backend=backend)
    assert_allclose(got_post, post, rtol=1e-9, atol=1e-12)
    assert_allclose(got_loglik, row_loglik, rtol=1e-9, atol=1e-9)

    stats = _pass.SufficientStats(n_components, n_features, diag=True)
    fused_post, fused_loglik = np.empty_like(post), np.empty_like(row_loglik)
    _pass.fused_pass(data, params, fused_post, fused_loglik, stats, backend=backend)
    assert_allclose(fused_post, got_post, rtol=1e-12, atol=1e-14)
    new, _ = _em.mstep(stats, params.means, params.variances, n_samples)
    # Soft counts within rounding of the threshold 1 may go either way.
    counts = post.T @ ~np.isnan(X)
    decided = np.abs(counts - 1.0) > 1e-9
    scale = 1.0 + abs(offset)
    assert_allclose(new.means[decided], expected.means[decided], rtol=1e-9, atol=1e-9 * scale)
    # The variance of an offset column loses the offset's digits in S1 - m N.
    assert_allclose(new.variances[decided], expected.variances[decided], rtol=1e-7,
                    atol=1e-7 * scale**2)
    assert_allclose(new.weights, expected.weights, rtol=1e-9, atol=1e-15)


def test_diag_with_equal_variances_is_spherical(backend):
    X, params = _problem(3, 200, 15, 5, 0.5)
    data = as_observed(X)
    spherical = params._replace(variances=params.variances[:, 0].copy())
    diag = params._replace(variances=np.repeat(spherical.variances[:, None], 15, axis=1))
    post_s, ll_s = _pass.estep(data, spherical, backend=backend)
    post_d, ll_d = _pass.estep(data, diag, backend=backend)
    assert_allclose(post_d, post_s, rtol=1e-10, atol=1e-13)
    assert_allclose(ll_d, ll_s, rtol=1e-10)


@pytest.mark.parametrize("n_components", [1, 3, 12, 20, 37])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_whole_diag_fit_agrees_across_backends(backend, n_components, dtype):
    X, params = _problem(5, 400, 30, n_components, 0.6)
    data = as_observed(X, dtype=dtype)
    reference = _memory.run_em(data, params, max_iter=15, backend="python")
    for n_threads in (1, 2):
        fit = _memory.run_em(data, params, max_iter=15, backend=backend, n_threads=n_threads)
        assert fit.n_iter == reference.n_iter
        assert_allclose(fit.log_likelihood, reference.log_likelihood, rtol=1e-10)
        for got, expected in zip(fit.params, reference.params):
            assert_allclose(got, expected, rtol=1e-8, atol=1e-12)


def test_diag_log_likelihood_never_decreases(backend):
    X, params = _problem(8, 300, 12, 4, 0.5)
    seen = []
    _memory.run_em(as_observed(X), params, tol=0.0, max_iter=40, backend=backend,
               callback=lambda iteration, ll: seen.append(ll))
    steps = np.diff(seen)
    assert (steps >= -1e-9 * np.abs(seen[1:])).all(), steps.min()


def test_hard_assignment_refuses_diag(backend):
    X, params = _problem(1, 10, 3, 2, 0.2)
    data = as_observed(X)
    stats = _pass.SufficientStats(2, 3, diag=True)
    with pytest.raises(ValueError, match="spherical"):
        _pass.fused_pass(data, params, np.empty((10, 2)), np.empty(10), stats, hard=True,
                       backend=backend)
