"""fastem.MixtureImputer: the completion it returns, its input forms, scikit-learn.

The completion itself is ``GaussianMixture.fill`` (tested in
test_estimator.py and test_course.py); here the imputer is checked for what it
adds: the same values as the mixture it fits, observed entries kept, every input
form alike, a better fill than column means on clustered data, the transformer
protocol, and scikit-learn's estimator checks, pipelines and cross-validation.
"""

import inspect
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

from fastem import GaussianMixture, MixtureImputer, NotFittedError


def _clustered(seed=0, n=300, d=10, k=4, missing_rate=0.3, spread=0.5):
    """Rows around k well-separated centres, a share of entries hidden.

    Returns the complete matrix, the matrix with NaN where hidden, and the mask.
    """
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-5, 5, size=(k, d))
    labels = rng.integers(k, size=n)
    complete = centres[labels] + rng.normal(0, spread, size=(n, d))
    hidden = rng.random((n, d)) < missing_rate
    hidden[np.all(hidden, axis=1), 0] = False  # every row keeps an entry
    X = complete.copy()
    X[hidden] = np.nan
    return complete, X, hidden, labels


def _rmse(filled, complete, hidden):
    return float(np.sqrt(np.mean((filled - complete)[hidden] ** 2)))


def test_transform_is_the_fitted_mixtures_fill():
    _, X, hidden, _ = _clustered()
    imputer = MixtureImputer(3, random_state=0)
    filled = imputer.fit_transform(X)
    mixture = GaussianMixture(3, covariance_type="diag", min_variance=1e-6,
                              random_state=0).fit(X)
    assert_allclose(imputer.mixture_.means_, mixture.means_, rtol=1e-12)
    assert_allclose(filled, mixture.fill(X), rtol=1e-12)
    assert_array_equal(filled[~hidden], X[~hidden])  # observed entries kept exactly
    assert np.all(np.isfinite(filled))
    assert imputer.n_iter_ == mixture.n_iter_ and imputer.n_features_in_ == X.shape[1]
    assert_allclose(imputer.transform(X), filled, rtol=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_fills_clustered_data_better_than_column_means(seed):
    # Four clusters 10 units apart with noise 0.5: a row's observed entries tell
    # its cluster, so the imputed entries land within about the noise, where the
    # column means are off by the spread of the centres. Required: under half the
    # column means' error (measured: 0.20-0.22 of it).
    complete, X, hidden, _ = _clustered(seed)
    column_means = np.where(hidden, np.nanmean(X, axis=0), X)
    filled = MixtureImputer(4, n_init=3, random_state=seed).fit_transform(X)
    assert _rmse(filled, complete, hidden) < 0.5 * _rmse(column_means, complete, hidden)


def test_one_component_fills_with_the_column_means():
    _, X, hidden, _ = _clustered()
    filled = MixtureImputer(1).fit_transform(X)
    assert_allclose(filled[hidden], np.broadcast_to(np.nanmean(X, axis=0), X.shape)[hidden],
                    rtol=1e-10)


def test_input_forms_give_the_same_completion():
    _, X, hidden, _ = _clustered(n=120)
    expected = MixtureImputer(3, random_state=0).fit_transform(X)
    # Sparse: the stored entries are the observed ones, explicit zeros included.
    rows, cols = np.nonzero(~hidden)
    for fmt in ("csr", "csc", "coo"):
        sparse = sp.coo_matrix((X[rows, cols], (rows, cols)), shape=X.shape).asformat(fmt)
        assert_allclose(MixtureImputer(3, random_state=0).fit_transform(sparse),
                        expected, rtol=1e-12)
    # Another marker of missing entries.
    zeros = np.where(hidden, 0.0, X)
    assert_allclose(MixtureImputer(3, missing_values=0, random_state=0).fit_transform(zeros),
                    expected, rtol=1e-12)
    # A list of lists with None.
    listed = [[None if np.isnan(v) else v for v in row] for row in X]
    assert_allclose(MixtureImputer(3, random_state=0).fit_transform(listed), expected,
                    rtol=1e-12)


def test_dtype_is_kept():
    _, X, _, _ = _clustered(n=80)
    assert MixtureImputer(2, random_state=0).fit_transform(X).dtype == np.float64
    X32 = X.astype(np.float32)
    filled = MixtureImputer(2, random_state=0).fit_transform(X32)
    assert filled.dtype == np.float32
    ints = np.nan_to_num(X, nan=-1).round().astype(np.int64)
    assert MixtureImputer(2, missing_values=-1).fit_transform(ints).dtype == np.float64


def test_new_rows_are_filled_from_their_cluster():
    complete, X, hidden, _ = _clustered(n=400)
    imputer = MixtureImputer(4, n_init=3, random_state=0).fit(X[:300])
    filled = imputer.transform(X[300:])
    column_means = np.where(hidden[300:], np.nanmean(X[:300], axis=0), X[300:])
    assert _rmse(filled, complete[300:], hidden[300:]) < \
        0.5 * _rmse(column_means, complete[300:], hidden[300:])


def test_a_column_never_observed():
    _, X, _, _ = _clustered(n=60)
    X[:, 4] = np.nan
    with pytest.raises(ValueError, match=r"1 column\(s\) of X have no observed entry "
                                         r"\(first: \[4\]\).*mean_prior_strength"):
        MixtureImputer(2).fit(X)
    filled = MixtureImputer(2, mean_prior_strength=1.0, mean_prior=7.5).fit_transform(X)
    assert_allclose(filled[:, 4], 7.5, rtol=1e-12)


def test_settings_are_those_of_gaussian_mixture():
    # Every setting of GaussianMixture, and no other, in the same order.
    ours = list(inspect.signature(MixtureImputer).parameters)
    theirs = list(inspect.signature(GaussianMixture).parameters)
    assert ours == theirs
    imputer = MixtureImputer(5, covariance_type="spherical", mean_prior_strength=2.0)
    assert imputer.get_params()["n_components"] == 5
    assert repr(imputer) == ("MixtureImputer(5, covariance_type='spherical', "
                             "mean_prior_strength=2.0)")
    assert repr(MixtureImputer()) == "MixtureImputer()"
    assert imputer.set_params(n_init=2) is imputer and imputer.n_init == 2
    with pytest.raises(ValueError, match="invalid parameter 'k' for MixtureImputer"):
        imputer.set_params(k=3)


@pytest.mark.parametrize("setting, value, message", [
    ("n_components", 0, "n_components"),
    ("covariance_type", "full", "covariance_type"),
    ("min_variance", -1.0, "min_variance"),
    ("mean_prior_strength", -1.0, "mean_prior_strength"),
    ("missing_values", "NA", "missing_values"),
])
def test_invalid_settings_raise_at_fit(setting, value, message):
    _, X, _, _ = _clustered(n=40)
    with pytest.raises(ValueError, match=message):
        MixtureImputer(**{setting: value}).fit(X)


def test_errors_before_and_after_fit():
    _, X, _, _ = _clustered(n=40)
    imputer = MixtureImputer(2, random_state=0)
    with pytest.raises(NotFittedError, match="call fit"):
        imputer.transform(X)
    imputer.fit(X)
    with pytest.raises(ValueError, match="X has 9 features, but .* expecting 10"):
        imputer.transform(X[:, :9])
    with pytest.raises(ValueError, match="n_components=50 must be <= n_samples=40"):
        MixtureImputer(50).fit(X)


def test_warm_start_continues_the_fit():
    _, X, _, _ = _clustered(n=100)
    imputer = MixtureImputer(3, max_iter=2, random_state=0, warm_start=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        imputer.fit(X)
        first = imputer.mixture_
        imputer.fit(X)
    assert imputer.mixture_ is first  # the same mixture, continued
    assert imputer.mixture_.n_iter_ == 2


def test_feature_names():
    pd = pytest.importorskip("pandas")
    _, X, _, _ = _clustered(n=60, d=3)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    imputer = MixtureImputer(2, random_state=0).fit(frame)
    assert list(imputer.feature_names_in_) == ["a", "b", "c"]
    assert list(imputer.get_feature_names_out()) == ["a", "b", "c"]
    with pytest.raises(ValueError, match="differ from feature_names_in_"):
        imputer.get_feature_names_out(["x", "y", "z"])
    imputer.fit(X)  # unnamed columns: the names are forgotten
    assert not hasattr(imputer, "feature_names_in_")
    assert list(imputer.get_feature_names_out()) == ["x0", "x1", "x2"]


def test_dask_input_gives_a_lazy_completion():
    da = pytest.importorskip("dask.array")
    pytest.importorskip("dask.dataframe")
    _, X, _, _ = _clustered(n=120)
    expected = MixtureImputer(3, random_state=0).fit_transform(X)
    lazy = MixtureImputer(3, random_state=0).fit_transform(da.from_array(X, chunks=(50, 10)))
    assert hasattr(lazy, "compute")
    assert_allclose(lazy.compute(), expected, rtol=1e-10)


# ---------------------------------------------------------------------------
# scikit-learn
# ---------------------------------------------------------------------------

def test_scikit_learn_estimator_checks():
    pytest.importorskip("sklearn", minversion="1.6")
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        # We do not inherit from sklearn.base.BaseEstimator, on purpose, and
        # the array API check skips without SCIPY_ARRAY_API.
        warnings.simplefilter("ignore", UserWarning)
        results = check_estimator(MixtureImputer(random_state=0), on_fail=None)
    failed = {r["check_name"]: repr(r["exception"]) for r in results
              if r["status"] == "failed"}
    assert not failed
    passed = {r["check_name"] for r in results if r["status"] == "passed"}
    # The transformer checks ran, not only the generic ones.
    assert {"check_transformer_general", "check_transformers_unfitted",
            "check_transformer_preserve_dtypes", "check_transformer_n_iter",
            "check_transformer_data_not_an_array"} <= passed
    assert len(passed) >= 40


def test_tags():
    pytest.importorskip("sklearn", minversion="1.6")
    from sklearn.utils import get_tags

    tags = get_tags(MixtureImputer())
    assert tags.input_tags.allow_nan and tags.input_tags.sparse
    assert tags.transformer_tags.preserves_dtype == ["float64", "float32"]
    assert not tags.target_tags.required


def test_in_a_pipeline_with_cross_validation():
    # A target that depends on the cluster: after imputation by the mixture a
    # linear model predicts it well; after the column means, much worse.
    pytest.importorskip("sklearn", minversion="1.6")
    from sklearn.base import clone
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import Ridge
    from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
    from sklearn.pipeline import make_pipeline

    complete, X, _, _ = _clustered(n=400, missing_rate=0.5)
    y = complete @ np.linspace(-1, 1, complete.shape[1])
    folds = KFold(5, shuffle=True, random_state=0)
    pipeline = make_pipeline(MixtureImputer(4, n_init=3, random_state=0), Ridge())
    ours = cross_val_score(pipeline, X, y, cv=folds)
    means = cross_val_score(make_pipeline(SimpleImputer(), Ridge()), X, y, cv=folds)
    assert ours.shape == (5,) and np.all(np.isfinite(ours))
    # Measured: R^2 0.98 against 0.66.
    assert ours.mean() > means.mean() + 0.05
    # clone and a grid over the imputer's settings, through the pipeline.
    assert clone(pipeline).get_params()["mixtureimputer__n_components"] == 4
    search = GridSearchCV(pipeline, {"mixtureimputer__n_components": [1, 4]}, cv=folds)
    search.fit(X, y)
    assert search.best_params_ == {"mixtureimputer__n_components": 4}


def test_set_output_gives_data_frames():
    pd = pytest.importorskip("pandas")
    pytest.importorskip("sklearn", minversion="1.6")
    from sklearn import config_context
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.utils import estimator_checks

    for check in ("check_set_output_transform", "check_set_output_transform_pandas",
                  "check_global_output_transform_pandas"):
        getattr(estimator_checks, check)("MixtureImputer", MixtureImputer(random_state=0))
    _, X, _, _ = _clustered(n=60, d=3)
    frame = pd.DataFrame(X, columns=["a", "b", "c"], index=np.arange(100, 160))
    expected = MixtureImputer(2, random_state=0).fit_transform(X)
    out = MixtureImputer(2, random_state=0).set_output(transform="pandas").fit_transform(frame)
    assert list(out.columns) == ["a", "b", "c"] and list(out.index) == list(frame.index)
    assert_allclose(out.to_numpy(), expected, rtol=1e-12)
    pipeline = make_pipeline(MixtureImputer(2, random_state=0), StandardScaler())
    assert isinstance(pipeline.set_output(transform="pandas").fit_transform(frame),
                      pd.DataFrame)
    with config_context(transform_output="pandas"):
        assert isinstance(MixtureImputer(2, random_state=0).fit_transform(X), pd.DataFrame)
    assert isinstance(MixtureImputer(2, random_state=0).fit_transform(X), np.ndarray)
    with pytest.raises(ValueError, match="use one of"):
        MixtureImputer().set_output(transform="arrow")
