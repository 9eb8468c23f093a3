"""Numerical robustness, determinism and concurrency of fits."""

import threading

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

import fastem
from fastem import _memory, _validation, as_observed


def _ratings(seed=0, n_samples=300, n_features=20, missing_rate=0.6, scale=1.0):
    rng = np.random.default_rng(seed)
    X = rng.integers(1, 6, size=(n_samples, n_features)).astype(np.float64) * scale
    X[rng.random(X.shape) < missing_rate] = np.nan
    return X


@pytest.fixture(autouse=True)
def _quiet_convergence(recwarn):
    """Short fits may stop at max_iter; that is not what these tests check."""


def _fit(X, backend, **settings):
    options = dict(n_components=4, random_state=0, max_iter=50, backend=backend,
                   init_params="random_from_data")
    options.update(settings)
    return fastem.GaussianMixture(**options).fit(X)


def _assert_finite_model(model):
    for name in ("weights_", "means_", "variances_"):
        assert np.isfinite(getattr(model, name)).all(), name
    assert np.isfinite(model.log_likelihood_)


@pytest.mark.parametrize("covariance_type", ["spherical", "diag"])
def test_log_likelihood_never_decreases(backend, covariance_type):
    X = _ratings(1)
    data = as_observed(X)
    rng = np.random.default_rng(1)
    means = rng.uniform(1, 5, size=(5, 20))
    variances = np.ones(5) if covariance_type == "spherical" else np.ones((5, 20))
    seen = []
    _memory.run_em(data, _validation.Params(means, variances, np.full(5, 0.2)), tol=0.0,
               max_iter=60, backend=backend, callback=lambda it, ll: seen.append(ll))
    steps = np.diff(seen)
    # EM is monotone; allow rounding of sums of about 1e3 terms.
    assert (steps >= -1e-10 * np.abs(seen[1:])).all(), steps.min()


def test_rows_with_nothing_observed_get_the_weights(backend):
    X = _ratings(2)
    X[:5] = np.nan
    model = _fit(X, backend)
    assert_allclose(model.predict_proba(X[:5]), np.tile(model.weights_, (5, 1)),
                    rtol=1e-12)
    assert_allclose(model.score_samples(X[:5]), 0.0, atol=1e-12)


def test_column_never_observed_keeps_a_finite_mean(backend):
    X = _ratings(3)
    X[:, 7] = np.nan
    model = _fit(X, backend)
    _assert_finite_model(model)
    filled = model.fill(X)
    assert np.isfinite(filled).all()


@pytest.mark.parametrize("kind", ["constant", "duplicated rows"])
def test_degenerate_data_give_a_finite_model(backend, kind):
    if kind == "constant":
        X = np.full((50, 6), 3.0)
    else:
        X = np.tile(_ratings(4, n_samples=5, n_features=6, missing_rate=0.0), (20, 1))
    model = _fit(X, backend, n_components=3, min_variance=0.25)
    _assert_finite_model(model)
    assert (model.variances_ >= 0.25).all()


def test_component_losing_its_weight_stays_finite(backend):
    # Two tight clusters and three components: one component ends with ~no weight.
    rng = np.random.default_rng(5)
    X = np.vstack([rng.normal(0, 0.1, (100, 4)), rng.normal(10, 0.1, (100, 4))])
    means = np.array([[0.0] * 4, [10.0] * 4, [1e3] * 4])
    params = _validation.Params(means, np.ones(3), np.full(3, 1 / 3))
    result = _memory.run_em(as_observed(X), params, max_iter=30, backend=backend)
    assert result.params.weights[2] < 1e-12
    for array in result.params:
        assert np.isfinite(array).all()
    # Its mean never moved: its soft counts stay below the threshold of 1.
    assert_array_equal(result.params.means[2], means[2])


def test_collapsing_component_without_floor_is_a_clear_error(backend):
    X = np.vstack([np.zeros((30, 3)), np.ones((30, 3))])
    params = _validation.Params(np.array([[0.0] * 3, [1.0] * 3]), np.ones(2), np.full(2, 0.5))
    with pytest.raises(ValueError, match="min_variance"):
        _memory.run_em(as_observed(X, missing_values=None), params, min_variance=0.0,
                   backend=backend)


@pytest.mark.filterwarnings("ignore::fastem.ConvergenceWarning")
@pytest.mark.parametrize("scale", [1e-150, 1e150])
def test_values_near_the_limits_of_float64(backend, scale):
    # Without a floor and with a fixed number of iterations (the relative
    # tolerance sees log-likelihoods shifted by log(scale)), EM commutes with
    # scaling the data.
    settings = dict(min_variance=0.0, tol=0.0, max_iter=20)
    model = _fit(_ratings(6, scale=scale), backend, **settings)
    _assert_finite_model(model)
    reference = _fit(_ratings(6), backend, **settings)
    assert_allclose(model.means_ / scale, reference.means_, rtol=1e-9)
    assert_allclose(model.variances_ / scale**2, reference.variances_, rtol=1e-9)
    assert_allclose(model.weights_, reference.weights_, rtol=1e-9)


def test_float32_data_with_large_values_do_not_overflow(backend):
    X = (_ratings(7) * 1e30).astype(np.float32)  # squares exceed float32's range
    model = _fit(X, backend)
    _assert_finite_model(model)


def test_same_random_state_is_bit_identical(backend):
    X = _ratings(8)
    first = _fit(X, backend, n_init=2, init_params="k-means++", n_threads=2)
    second = _fit(X, backend, n_init=2, init_params="k-means++", n_threads=2)
    for name in ("weights_", "means_", "variances_"):
        assert_array_equal(getattr(first, name), getattr(second, name))
    assert first.log_likelihood_ == second.log_likelihood_


def test_two_fits_in_two_python_threads_match_serial_fits(backend):
    inputs = [sp.csr_matrix(np.nan_to_num(_ratings(s, n_samples=3000), nan=0.0))
              for s in (10, 11)]
    serial = [_fit(X, backend, n_threads=1).means_ for X in inputs]
    results = [None, None]

    def work(i):
        results[i] = _fit(inputs[i], backend, n_threads=1).means_

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for got, expected in zip(results, serial):
        assert_array_equal(got, expected)


@pytest.mark.parametrize("covariance_type", ["spherical", "diag"])
def test_one_and_two_threads_give_the_same_fit(backend, covariance_type):
    # The kernels' threads only change the order of float64 sums: the fits
    # agree to rounding, iteration for iteration (not bit for bit).
    X = sp.csr_matrix(np.nan_to_num(_ratings(12, n_samples=2000), nan=0.0))
    fits = [_fit(X, backend, n_threads=n, covariance_type=covariance_type, tol=0.0,
                 max_iter=15, init_params="k-means++") for n in (1, 2)]
    assert fits[0].n_iter_ == fits[1].n_iter_
    assert_allclose(fits[1].log_likelihood_, fits[0].log_likelihood_, rtol=1e-12)
    for name in ("weights_", "means_", "variances_"):
        assert_allclose(getattr(fits[1], name), getattr(fits[0], name), rtol=1e-10,
                        err_msg=name)


@pytest.mark.parametrize("init_params", ["k-means++", "random_from_data", "course"])
def test_fitting_leaves_global_state_alone(backend, init_params):
    # With an int random_state nothing global is read or written: NumPy's
    # global RandomState is untouched, and two estimators share nothing.
    np.random.seed(7)
    before = np.random.get_state()[1].copy()
    first = _fit(_ratings(13), backend, init_params=init_params, n_init=2)
    assert_array_equal(np.random.get_state()[1], before)
    second = fastem.GaussianMixture(**first.get_params())
    assert not hasattr(second, "means_")
    second.fit(_ratings(13))
    for name in ("weights_", "means_", "variances_"):
        assert_array_equal(getattr(second, name), getattr(first, name))
        assert getattr(second, name) is not getattr(first, name)
    shared = [name for name, value in vars(fastem.GaussianMixture).items()
              if isinstance(value, (list, dict, set, np.ndarray))]
    assert shared == []  # no mutable class attribute
