"""fastem.GaussianMixture: input forms, initialisations, settings, scikit-learn.

The EM arithmetic itself is tested in test_kernels.py and test_course.py; here
the estimator is checked for what it adds: every input form giving the same
fit, the course's results through the estimator, agreement with
scikit-learn's GaussianMixture on complete data, restarts, warm starts,
progress output, validation, and scikit-learn's own estimator checks.
"""

import re
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

import fastem
from fastem import ConvergenceWarning, GaussianMixture, NotFittedError, as_observed, course
from fastem._init import initial_params
from fastem._memory import InMemorySource
from fastem._validation import INIT_METHODS

COVARIANCE_TYPES = ["spherical", "diag"]


def _ratings(seed=0, n=60, d=8, k=3, missing_rate=0.4):
    """Clustered 1..5-like data with NaN for missing entries and one empty row."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(1, 5, size=(k, d))
    X = centres[rng.integers(k, size=n)] + rng.normal(0, 0.4, size=(n, d))
    X[rng.random(X.shape) < missing_rate] = np.nan
    X[n // 2] = np.nan
    return X


def _fit(X, **settings):
    settings.setdefault("random_state", 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianMixture(**settings).fit(X)


def _assert_same_fit(a, b, rtol):
    for name in ("weights_", "means_", "variances_"):
        assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=rtol,
                        err_msg=name)
    assert_allclose(a.log_likelihood_, b.log_likelihood_, rtol=rtol)
    assert a.n_iter_ == b.n_iter_


# ---------------------------------------------------------------------------
# every input form gives the same fit
# ---------------------------------------------------------------------------

def _forms(X_nan):
    """The same data as NaN-dense, 0-dense and every sparse form."""
    observed = ~np.isnan(X_nan)
    rows, cols = np.nonzero(observed)
    values = X_nan[observed]
    coo = sp.coo_matrix((values, (rows, cols)), shape=X_nan.shape)
    return {
        "nan-dense": (X_nan, {}),
        "zero-dense": (np.where(observed, X_nan, 0.0), {"missing_values": 0}),
        "csr": (coo.tocsr(), {}),
        "csc": (coo.tocsc(), {}),
        "coo": (coo, {}),
        "csr_array": (sp.csr_array(coo), {}),
        "lil": (coo.tolil(), {}),
        "observed": (as_observed(X_nan), {}),
    }


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("init_params", INIT_METHODS)
def test_every_input_form_gives_the_same_fit(covariance_type, init_params, backend):
    X = _ratings(seed=1)
    fits = {name: _fit(data, n_components=3, covariance_type=covariance_type,
                       init_params=init_params, backend=backend, **extra)
            for name, (data, extra) in _forms(X).items()}
    reference = fits.pop("nan-dense")
    for name, model in fits.items():
        _assert_same_fit(model, reference, rtol=1e-10)
    assert reference.variances_.shape == ((3,) if covariance_type == "spherical"
                                          else (3, X.shape[1]))


def test_explicit_zeros_in_sparse_input_are_observed():
    X = _ratings(seed=2)
    X[~np.isnan(X)] = np.round(X[~np.isnan(X)]) - 3.0  # many observed zeros
    rows, cols = np.nonzero(~np.isnan(X))
    csr = sp.csr_matrix((X[rows, cols], (rows, cols)), shape=X.shape)
    assert (csr.data == 0).any()
    _assert_same_fit(_fit(csr, n_components=2), _fit(X, n_components=2), rtol=1e-10)


def test_integer_input_is_accepted():
    X = np.rint(np.nan_to_num(_ratings(seed=3), nan=0.0)).astype(np.int64)
    model = _fit(X, n_components=2, missing_values=0)
    reference = _fit(X.astype(np.float64), n_components=2, missing_values=0)
    _assert_same_fit(model, reference, rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_stays_float32_and_agrees_with_float64(covariance_type, backend):
    X64 = np.round(_ratings(seed=4) * 4) / 4  # exactly representable in float32
    X32 = X64.astype(np.float32)
    assert as_observed(X32).data.dtype == np.float32
    m32 = _fit(X32, n_components=3, covariance_type=covariance_type, backend=backend)
    m64 = _fit(X64, n_components=3, covariance_type=covariance_type, backend=backend)
    _assert_same_fit(m32, m64, rtol=1e-4)
    assert m32.fill(X32).dtype == np.float32
    assert m32.predict_entries(X32, [0, 1], [0, 1]).dtype == np.float32
    assert m64.fill(X64).dtype == np.float64


def test_fit_does_not_modify_or_keep_the_input():
    X = _ratings(seed=5)
    X_before = X.copy()
    csr = sp.csr_matrix(np.nan_to_num(X))
    csr_data = csr.data.copy()
    _fit(X, n_components=2)
    _fit(csr, n_components=2)
    assert_array_equal(X, X_before)
    assert_array_equal(csr.data, csr_data)


# ---------------------------------------------------------------------------
# the course through the estimator
# ---------------------------------------------------------------------------

def test_course_init_is_the_course_init_without_touching_global_state():
    X = np.nan_to_num(_ratings(seed=6), nan=0.0)
    mixture, _ = course.init(X, 4, seed=3)
    np.random.seed(123)
    state = np.random.get_state()[1].copy()
    params = initial_params(InMemorySource(as_observed(X, missing_values=0)), 4, "course",
                            np.random.RandomState(3), covariance_type="spherical",
                            min_variance=0.25)
    assert_array_equal(np.random.get_state()[1], state)
    assert_array_equal(params.means, mixture.mu)
    assert_allclose(params.variances, mixture.var, rtol=1e-14)
    assert_array_equal(params.weights, mixture.p)


def test_course_reference_run(load_course_file, backend):
    X = load_course_file("test_incomplete.txt")
    X_gold = load_course_file("test_complete.txt")
    model = _fit(X, n_components=4, init_params="course", missing_values=0,
                 random_state=0, backend=backend)
    assert_allclose(model.log_likelihood_, -84.98451993042474, rtol=1e-12)
    assert model.converged_
    assert_allclose(course.rmse(model.fill(X), X_gold), 0.3152301205749675, rtol=1e-10)
    mixture, post = course.init(X, 4, seed=0)
    mixture, _, log_likelihood = course.run(X, mixture, post)
    assert_allclose(model.means_, mixture.mu, rtol=1e-12)
    assert_allclose(model.variances_, mixture.var, rtol=1e-12)
    assert_allclose(model.log_likelihood_, log_likelihood, rtol=1e-14)


def test_n_init_with_course_init_runs_the_course_seeds():
    X = np.nan_to_num(_ratings(seed=7, n=40), nan=0.0)
    best = _fit(X, n_components=3, init_params="course", missing_values=0, n_init=3,
                random_state=5)
    runs = []
    for seed in (5, 6, 7):
        mixture, post = course.init(X, 3, seed=seed)
        runs.append(course.run(X, mixture, post))
    mixture, _, log_likelihood = max(runs, key=lambda run: run[2])
    assert_allclose(best.log_likelihood_, log_likelihood, rtol=1e-12)
    assert_allclose(best.means_, mixture.mu, rtol=1e-10)


# ---------------------------------------------------------------------------
# agreement with scikit-learn on complete data
# ---------------------------------------------------------------------------

def test_spherical_agrees_with_scikit_learn_on_complete_data():
    mixture = pytest.importorskip("sklearn.mixture")
    rng = np.random.default_rng(8)
    centres = np.array([[0.0, 0.0, 0.0], [4.0, 4.0, 0.0], [0.0, 5.0, 5.0]])
    # Overlapping clusters, so that EM is still moving after n_iter iterations.
    X = np.concatenate([c + rng.normal(0, s, size=(80, 3))
                        for c, s in zip(centres, (1.5, 2.0, 2.5))])
    weights = np.array([0.2, 0.3, 0.5])
    means = centres + 0.5
    variances = np.array([1.0, 2.0, 3.0])
    n_iter = 25
    ours = _fit(X, n_components=3, tol=0.0, max_iter=n_iter, min_variance=0.0,
                weights_init=weights, means_init=means, variances_init=variances)
    theirs = mixture.GaussianMixture(
        3, covariance_type="spherical", tol=0.0, max_iter=n_iter, reg_covar=0.0,
        weights_init=weights, means_init=means, precisions_init=1.0 / variances)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # its ConvergenceWarning at tol=0
        theirs.fit(X)
    assert ours.n_iter_ == theirs.n_iter_ == n_iter
    assert_allclose(ours.weights_, theirs.weights_, rtol=1e-6)
    assert_allclose(ours.means_, theirs.means_, rtol=1e-6, atol=1e-9)
    assert_allclose(ours.variances_, theirs.covariances_, rtol=1e-6)
    assert_allclose(ours.score_samples(X), theirs.score_samples(X), rtol=1e-6)
    assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), atol=1e-6)
    assert_allclose(ours.bic(X), theirs.bic(X), rtol=1e-6)
    assert_allclose(ours.aic(X), theirs.aic(X), rtol=1e-6)


# ---------------------------------------------------------------------------
# predictions
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_predictions_are_consistent(covariance_type):
    X = _ratings(seed=9)
    model = _fit(X, n_components=3, covariance_type=covariance_type)
    post = model.predict_proba(X)
    assert post.shape == (X.shape[0], 3)
    assert_allclose(post.sum(axis=1), 1.0)
    assert_array_equal(model.predict(X), post.argmax(axis=1))
    # The empty row has the prior as its posterior and log-likelihood ~ 0.
    empty = X.shape[0] // 2
    assert_allclose(post[empty], model.weights_, rtol=1e-12)
    row_loglik = model.score_samples(X)
    assert abs(row_loglik[empty]) < 1e-12
    assert_allclose(model.score(X), row_loglik.mean())
    n, p = X.shape[0], model.means_.size + model.variances_.size + 2
    assert_allclose(model.bic(X), -2 * row_loglik.sum() + p * np.log(n))
    assert_allclose(model.aic(X), -2 * row_loglik.sum() + 2 * p)
    assert_allclose(model.lower_bound_, model.log_likelihood_ / n)
    # log_likelihood_ is that of the final E-step, before the last M-step.
    assert abs(model.log_likelihood_ - row_loglik.sum()) <= 1e-5 * abs(row_loglik.sum())


def test_fit_predict_matches_fit_then_predict():
    X = _ratings(seed=10)
    labels = GaussianMixture(3, random_state=0).fit_predict(X)
    assert_array_equal(labels, _fit(X, n_components=3).predict(X))


def test_fill_keeps_observed_entries_and_matches_the_course():
    X = _ratings(seed=11)
    model = _fit(X, n_components=3)
    filled = model.fill(X)
    observed = ~np.isnan(X)
    assert_array_equal(filled[observed], X[observed])
    expected = model.predict_proba(X) @ model.means_
    assert_allclose(filled[~observed], expected[~observed], rtol=1e-12)
    # missing_values only says how to read dense input: the fitted model reads
    # the course's 0-as-missing form of the same data the same way.
    X0 = np.where(observed, X, 0.0)
    mixture = course.GaussianMixture(model.means_, model.variances_, model.weights_)
    assert_allclose(model.set_params(missing_values=0).fill(X0),
                    course.fill_matrix(X0, mixture), rtol=1e-12)


@pytest.mark.parametrize("form", ["nan-dense", "csr", "coo", "observed"])
def test_predict_entries_equals_fill(form):
    X = _ratings(seed=12)
    data, extra = _forms(X)[form]
    model = _fit(data, n_components=3, **extra)
    filled = model.fill(data)
    rng = np.random.default_rng(0)
    rows = rng.integers(X.shape[0], size=200)
    cols = rng.integers(X.shape[1], size=200)
    assert_allclose(model.predict_entries(data, rows, cols), filled[rows, cols],
                    rtol=1e-12)
    # A few rows only: the E-step runs on those rows alone.
    assert_allclose(model.predict_entries(data, [3, 3, 0], [1, 2, 5]),
                    filled[[3, 3, 0], [1, 2, 5]], rtol=1e-12)
    grid = model.predict_entries(data, [[0, 1], [2, 3]], [[0, 0], [1, 1]])
    assert grid.shape == (2, 2)
    assert model.predict_entries(data, [], []).shape == (0,)


def test_predict_entries_rejects_bad_indices():
    X = _ratings(seed=13)
    model = _fit(X, n_components=2)
    with pytest.raises(ValueError, match="cols must lie in"):
        model.predict_entries(X, [0], [X.shape[1]])
    with pytest.raises(ValueError, match="rows must lie in"):
        model.predict_entries(X, [-1], [0])
    with pytest.raises(ValueError, match="same shape"):
        model.predict_entries(X, [0, 1], [0])
    with pytest.raises(ValueError, match="integers"):
        model.predict_entries(X, [0.5], [0])


# ---------------------------------------------------------------------------
# restarts, randomness, warm start, stopping
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("init_params", INIT_METHODS)
def test_random_state_makes_fits_reproducible(init_params):
    X = _ratings(seed=14)
    a = _fit(X, n_components=3, init_params=init_params, random_state=4, n_init=2)
    b = _fit(X, n_components=3, init_params=init_params, random_state=4, n_init=2)
    _assert_same_fit(a, b, rtol=0)
    rs = np.random.RandomState(0)
    c = _fit(X, n_components=3, init_params=init_params, random_state=rs)
    d = _fit(X, n_components=3, init_params=init_params, random_state=rs)
    assert not np.array_equal(c.means_, d.means_)  # the state moved on


def test_n_init_keeps_the_best_restart():
    X = _ratings(seed=15, k=4)
    singles = [_fit(X, n_components=4, init_params="random_from_data", random_state=s)
               for s in (10, 11, 12)]
    best = _fit(X, n_components=4, init_params="random_from_data", random_state=10,
                n_init=3)
    winner = max(singles, key=lambda model: model.log_likelihood_)
    _assert_same_fit(best, winner, rtol=0)


def test_warm_start_continues_the_previous_fit():
    X = _ratings(seed=16)
    straight = _fit(X, n_components=3, tol=0.0, max_iter=10)
    model = _fit(X, n_components=3, tol=0.0, max_iter=4, warm_start=True)
    with pytest.warns(ConvergenceWarning):
        model.set_params(max_iter=6).fit(X)
    assert model.n_iter_ == 6
    assert_allclose(model.means_, straight.means_, rtol=1e-13)
    assert_allclose(model.log_likelihood_, straight.log_likelihood_, rtol=1e-14)
    with pytest.raises(ValueError, match="warm_start=False"):
        model.set_params(n_components=2).fit(X)


def test_tol_zero_runs_max_iter_and_warns():
    X = _ratings(seed=17)
    with pytest.warns(ConvergenceWarning, match="max_iter=7"):
        model = GaussianMixture(3, tol=0.0, max_iter=7, random_state=0).fit(X)
    assert model.n_iter_ == 7 and not model.converged_
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        model = GaussianMixture(3, random_state=0).fit(X)
    assert model.converged_


def test_users_initial_parameters_are_used():
    X = _ratings(seed=18)
    means = np.nan_to_num(X[:2], nan=3.0)
    model = _fit(X, n_components=2, max_iter=1, means_init=means,
                 variances_init=[1.0, 2.0], weights_init=[0.5, 0.5])
    start = fastem._pass.estep(as_observed(X), fastem._validation.Params(
        means, np.array([1.0, 2.0]), np.array([0.5, 0.5])))[1].sum()
    assert_allclose(model.log_likelihood_, start, rtol=1e-13)
    with pytest.raises(ValueError, match="means_init must have shape"):
        _fit(X, n_components=3, means_init=means)


# ---------------------------------------------------------------------------
# progress
# ---------------------------------------------------------------------------

def test_verbose_prints_one_line_per_iteration(capsys):
    X = _ratings(seed=19)
    model = _fit(X, n_components=3, verbose=1)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == model.n_iter_
    assert re.match(r"iteration\s+1\s+log-likelihood -?[\d.]+(e[+-]\d+)?\s+change nan\s+"
                    r"[\d.]+ s$", err[0])
    assert re.search(r"change \d", err[1])


def test_verbose_2_adds_restart_summaries(capsys):
    X = _ratings(seed=20)
    _fit(X, n_components=3, verbose=2, n_init=2)
    err = capsys.readouterr().err
    assert err.count("restart 1/2: log-likelihood") == 1
    assert err.count("restart 2/2: init 'k-means++'") == 1
    assert "kept restart" in err
    assert "[restart 2/2] iteration" in err


def test_silent_by_default(capsys):
    _fit(_ratings(seed=21), n_components=2)
    assert capsys.readouterr() == ("", "")


# ---------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("setting, value, message", [
    ("n_components", 0, "n_components=0"),
    ("n_components", 2.5, "n_components=2.5"),
    ("covariance_type", "full", "covariance_type='full'.*spherical"),
    ("tol", -1e-3, "tol=-0.001"),
    ("max_iter", 0, "max_iter=0"),
    ("n_init", 0, "n_init=0"),
    ("init_params", "kmeans", "init_params='kmeans'.*k-means\\+\\+"),
    ("min_variance", -0.1, "min_variance=-0.1"),
    ("random_state", -1, "random_state=-1"),
    ("n_threads", 0, "n_threads=0"),
    ("backend", "fortran", "backend='fortran'"),
    ("verbose", -1, "verbose=-1"),
    ("missing_values", "NA", "missing_values='NA'"),
])
def test_invalid_settings_are_named(setting, value, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(**{setting: value}).fit(_ratings(seed=22))


def test_too_many_components_and_bad_shapes():
    X = _ratings(seed=23, n=5)
    with pytest.raises(ValueError, match="n_components=6 must be <= n_samples=5"):
        GaussianMixture(6).fit(X)
    model = _fit(X, n_components=2)
    with pytest.raises(ValueError, match="X has 7 features, but GaussianMixture is "
                                         "expecting 8 features"):
        model.predict(X[:, :7])
    with pytest.raises(ValueError, match="Reshape your data"):
        model.predict(X[0])
    with pytest.raises(ValueError, match="0 sample"):
        GaussianMixture().fit(np.empty((0, 3)))
    with pytest.raises(ValueError, match="Complex data"):
        GaussianMixture().fit(np.ones((3, 2), dtype=complex))
    with pytest.raises(ValueError, match="finite"):
        GaussianMixture().fit(np.array([[1.0, np.inf], [2.0, 3.0]]))


def test_not_fitted_error():
    model = GaussianMixture()
    for method in ("predict", "predict_proba", "score_samples", "score", "fill",
                   "bic", "aic"):
        with pytest.raises(NotFittedError, match="call fit"):
            getattr(model, method)(np.ones((2, 2)))
    with pytest.raises(NotFittedError):
        model.predict_entries(np.ones((2, 2)), [0], [0])
    with pytest.raises(AttributeError):
        model.save("unused.npz")


def test_not_fitted_error_is_scikit_learns_once_imported():
    exceptions = pytest.importorskip("sklearn.exceptions")
    with pytest.raises(exceptions.NotFittedError):
        GaussianMixture().predict(np.ones((2, 2)))


def test_using_fastem_does_not_import_scikit_learn():
    # A fresh interpreter: importing and using fastem must not import sklearn.
    import subprocess

    code = ("import sys, numpy as np, fastem; "
            "m = fastem.GaussianMixture(2, random_state=0).fit(np.eye(4)); "
            "m.predict(np.eye(4)); X = np.eye(4); X[0, 1] = np.nan; "
            "fastem.MixtureImputer(2, random_state=0).fit_transform(X); "
            "print('sklearn' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"


def test_get_set_params_and_repr():
    model = GaussianMixture(3, covariance_type="diag")
    params = model.get_params()
    assert params["n_components"] == 3 and params["covariance_type"] == "diag"
    assert repr(model) == "GaussianMixture(3, covariance_type='diag')"
    assert repr(GaussianMixture()) == "GaussianMixture()"
    assert model.set_params(tol=1e-3) is model and model.tol == 1e-3
    with pytest.raises(ValueError, match="invalid parameter 'tolerance'"):
        model.set_params(tolerance=1.0)


# ---------------------------------------------------------------------------
# scikit-learn's estimator checks
# ---------------------------------------------------------------------------

# Checks that cannot apply to this estimator, with the reason.
EXPECTED_FAILED_CHECKS = {
    "check_estimator_sparse_array": (
        "the check assumes that an estimator with predict_proba and sparse "
        "support is a classifier (it reads classifier_tags.multi_class, None "
        "here); fitting and predicting on every sparse format is tested in "
        "test_every_sparse_format_fits"),
    "check_estimator_sparse_matrix": "as check_estimator_sparse_array",
}


def test_scikit_learn_estimator_checks():
    sklearn = pytest.importorskip("sklearn")
    estimator_checks = pytest.importorskip("sklearn.utils.estimator_checks")
    if tuple(int(v) for v in sklearn.__version__.split(".")[:2]) < (1, 6):
        pytest.skip("needs scikit-learn >= 1.6 (estimator tags)")
    with warnings.catch_warnings():
        # We do not inherit from sklearn.base.BaseEstimator, on purpose, and
        # the array API check skips without SCIPY_ARRAY_API.
        warnings.simplefilter("ignore", UserWarning)
        results = estimator_checks.check_estimator(
            GaussianMixture(random_state=0), on_fail=None,
            expected_failed_checks=EXPECTED_FAILED_CHECKS)
    failed = {r["check_name"]: repr(r["exception"]) for r in results
              if r["status"] == "failed"}
    assert not failed
    statuses = {r["check_name"]: r["status"] for r in results}
    assert sum(status == "passed" for status in statuses.values()) >= 30
    for name in EXPECTED_FAILED_CHECKS:
        assert statuses[name] == "xfail"


def test_tags_declare_nan_and_sparse():
    pytest.importorskip("sklearn", minversion="1.6")
    from sklearn.utils import get_tags

    tags = get_tags(GaussianMixture())
    assert tags.input_tags.allow_nan and tags.input_tags.sparse
    assert tags.estimator_type == "density_estimator"
    assert not tags.target_tags.required


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "lil", "dok", "dia", "bsr"])
def test_every_sparse_format_fits(fmt):
    rng = np.random.RandomState(0)
    X = rng.uniform(size=(40, 3))
    X[X < 0.6] = 0
    X = sp.csr_matrix(X).asformat(fmt)
    model = _fit(X, n_components=2)
    assert model.predict(X).shape == (40,)
    assert model.predict_proba(X).shape == (40, 2)
    X64 = sp.csr_matrix(X)
    X64.indices = X64.indices.astype(np.int64)
    X64.indptr = X64.indptr.astype(np.int64)
    _assert_same_fit(_fit(X64, n_components=2), model, rtol=1e-12)
