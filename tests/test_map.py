"""The MAP options of the mixture (docs/model.md, section 8): a prior on the means,
a shared fixed variance. Off by default, so the course's results stay exact."""

import io

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

import fastem
from fastem import GaussianMixture, as_observed
from fastem._em import MeanPrior, em_loop, log_prior, mstep
from fastem._memory import InMemorySource
from fastem._pass import SufficientStats, estep, fused_pass
from fastem._validation import Params


def _ratings(seed=0, n=200, d=30):
    rng = np.random.default_rng(seed)
    groups = rng.integers(0, 3, n)
    centres = rng.uniform(1, 5, (3, d))
    X = centres[groups] + rng.normal(0, 0.6, (n, d))
    X[rng.random(X.shape) < 0.7] = np.nan
    X[:, -1] = np.nan  # a column nobody observed
    return X


def _problem(seed=0, diag=False):
    X = _ratings(seed)
    rng = np.random.default_rng(seed + 100)
    means = rng.uniform(1, 5, (4, X.shape[1]))
    variances = rng.uniform(0.5, 2.0, (4, X.shape[1]) if diag else 4)
    return X, Params(means, variances, np.full(4, 0.25))


def _stats(X, params, backend):
    data = as_observed(X)
    stats = SufficientStats(4, X.shape[1], params.variances.ndim == 2)
    post, row_loglik = np.empty((X.shape[0], 4)), np.empty(X.shape[0])
    fused_pass(data, params, post, row_loglik, stats, backend=backend)
    return stats


@pytest.mark.parametrize("diag", [False, True])
def test_map_m_step_equals_a_direct_computation_in_both_backends(backend, diag):
    X, params = _problem(1, diag)
    mask = ~np.isnan(X)
    values = np.where(mask, X, 0.0)
    post, _ = estep(as_observed(X), params, backend="python")
    prior_mean = np.linspace(2.0, 4.0, X.shape[1])
    prior = MeanPrior(7.5, prior_mean)
    got, _ = mstep(_stats(X, params, backend), params.means, params.variances,
                   X.shape[0], prior=prior, fixed_variance=1.3)
    expected = (post.T @ values + 7.5 * prior_mean) / (post.T @ mask + 7.5)
    assert_allclose(got.means, expected, rtol=1e-10)
    assert_array_equal(got.means[:, -1], prior_mean[-1])  # nobody's column: the prior
    assert_array_equal(got.variances, np.full(params.variances.shape, 1.3))
    assert_allclose(got.weights, post.mean(axis=0), rtol=1e-12)


@pytest.mark.parametrize("diag", [False, True])
def test_a_vanishing_prior_gives_the_maximum_likelihood_step(backend, diag):
    X, params = _problem(2, diag)
    stats = _stats(X, params, backend)
    ml, ml_error = mstep(stats, params.means, params.variances, X.shape[0],
                         min_variance=0.0, mean_threshold=0.0)
    tiny, tiny_error = mstep(stats, params.means, params.variances, X.shape[0],
                             min_variance=0.0, prior=MeanPrior(1e-9))
    seen = stats.resp_obs_sum > 0
    assert_allclose(tiny.means[seen], ml.means[seen], rtol=1e-6)
    assert_allclose(tiny_error, ml_error, rtol=1e-6)
    variances_seen = seen if diag else slice(None)
    assert_allclose(tiny.variances[variances_seen], ml.variances[variances_seen],
                    rtol=1e-6)


@pytest.mark.parametrize("covariance_type", ["spherical", "diag"])
def test_the_fixed_variance_is_honoured_through_a_fit(covariance_type):
    X = _ratings(3)
    model = GaussianMixture(3, covariance_type=covariance_type, fixed_variance=1.7,
                            mean_prior_strength=4.0, random_state=0).fit(X)
    assert_array_equal(model.variances_, 1.7)
    shape = (3, X.shape[1]) if covariance_type == "diag" else (3,)
    assert model.variances_.shape == shape
    assert model.converged_


def test_the_map_objective_never_decreases():
    X = _ratings(4)
    source = InMemorySource(as_observed(X))
    prior = MeanPrior(5.0, 0.5)
    objectives = []

    def one_pass(params):
        stats, log_likelihood = source.em_pass(params, weight_floor=1e-16)
        objectives.append(log_likelihood + log_prior(prior, params))
        return stats, log_likelihood

    start = Params(np.nan_to_num(X[:4], nan=3.0), np.full(4, 0.8), np.full(4, 0.25))
    em_loop(one_pass, start, X.shape[0], tol=0.0, max_iter=25, prior=prior,
            fixed_variance=0.8)
    objectives = np.array(objectives)
    assert len(objectives) == 25
    assert (np.diff(objectives) >= -1e-9 * np.abs(objectives[1:])).all()
    assert objectives[-1] > objectives[0]


def test_defaults_are_the_course_rules():
    X = _ratings(5)
    plain = GaussianMixture(3, random_state=0).fit(X)
    explicit = GaussianMixture(3, random_state=0, mean_prior_strength=0.0,
                               fixed_variance=None).fit(X)
    assert_array_equal(plain.means_, explicit.means_)
    assert plain.log_likelihood_ == explicit.log_likelihood_


def test_the_prior_shrinks_means_of_rarely_observed_columns():
    X = _ratings(6)
    X[:, 0] = np.nan
    X[:3, 0] = 5.0  # a column of three ratings
    shrunk = GaussianMixture(3, random_state=0, mean_prior_strength=50.0,
                             mean_prior=3.0).fit(X)
    assert np.all(np.abs(shrunk.means_[:, 0] - 3.0) < 0.2)
    free = GaussianMixture(3, random_state=0, min_variance=0.25).fit(X)
    assert np.abs(free.means_[:, 0] - 3.0).max() > 1.0


def test_model_files_keep_the_map_settings():
    X = _ratings(7)
    prior_mean = np.linspace(1.0, 2.0, X.shape[1])
    model = GaussianMixture(2, random_state=0, mean_prior_strength=3.0,
                            mean_prior=prior_mean, fixed_variance=0.9).fit(X)
    buffer = io.BytesIO()
    model.save(buffer)
    buffer.seek(0)
    loaded = fastem.load(buffer)
    assert loaded.mean_prior_strength == 3.0 and loaded.fixed_variance == 0.9
    assert_array_equal(loaded.mean_prior, prior_mean)
    assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    refit = GaussianMixture(**loaded.get_params()).fit(X)
    assert_array_equal(refit.means_, model.means_)


@pytest.mark.parametrize("settings, pattern", [
    ({"mean_prior_strength": -1.0}, "mean_prior_strength=-1.0 is invalid"),
    ({"mean_prior_strength": float("inf")}, "mean_prior_strength"),
    ({"fixed_variance": 0.0}, "fixed_variance=0.0 is invalid"),
    ({"fixed_variance": -2}, "fixed_variance"),
    ({"mean_prior": float("nan")}, "mean_prior"),
    ({"mean_prior": [[1.0]]}, "mean_prior"),
    ({"mean_prior_strength": 1.0, "mean_prior": [1.0, 2.0]}, r"mean_prior must have shape"),
])
def test_invalid_map_settings(settings, pattern):
    with pytest.raises(ValueError, match=pattern):
        GaussianMixture(2, **settings).fit(_ratings(8))
