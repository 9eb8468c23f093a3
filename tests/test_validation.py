"""Bad input at every public entry point: a clear exception, never a crash.

Each table below crosses entry points with bad inputs and asserts the type
of the exception and a keyword of its message. The malformed scipy.sparse
matrices are built valid, then have an index array replaced: scipy's own
conversions (tocsr, sum_duplicates) run compiled code that trusts those
arrays, so they are checked before scipy or the kernels read them. A crash
(segmentation fault) there would take the whole test run down with it.
"""

import subprocess
import sys
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import fastem
from fastem import GaussianMixture, NotFittedError
from fastem import io as rating_io
from fastem import ModelFileError, ObservedData, as_observed
from fastem._memory import run_em
from fastem._pass import estep
from fastem._validation import MAX_THREADS, Params
from fastem.course import common, em, kmeans, naive_em

# 4 x 3 with missing entries (NaN) in rows 0-2.
X_NAN = np.array([[1.0, 2.0, np.nan], [3.0, np.nan, 4.0], [np.nan, 5.0, 1.0],
                  [2.0, 2.0, 2.0]])
X_ZERO = np.nan_to_num(X_NAN)  # the course's convention: 0 is missing


@pytest.fixture(scope="module")
def model():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fastem.ConvergenceWarning)
        return GaussianMixture(2, random_state=0).fit(X_NAN)


@pytest.fixture(scope="module")
def mixture():
    return common.init(X_ZERO, 2, seed=0)


def _replace(matrix, **arrays):
    """``matrix`` with arrays replaced after construction (no checks by scipy)."""
    for name, value in arrays.items():
        setattr(matrix, name, value)
    return matrix


def _i32(*values):
    return np.array(values, dtype=np.int32)


def _csr(**arrays):
    # Valid: indices [0 1 2] x 4, indptr [0 3 6 9 12].
    return _replace(sp.csr_matrix(np.ones((4, 3))), **arrays)


def _csc(**arrays):
    # Valid: indices [0 1 2 3] x 3, indptr [0 4 8 12].
    return _replace(sp.csc_matrix(np.ones((4, 3))), **arrays)


def _coo(**arrays):
    # scipy's row and col setters cast to the index dtype: float coordinates
    # cannot be stored, so that case is covered by scipy itself.
    return _replace(sp.coo_matrix(np.ones((4, 3))), **arrays)


def _lil_with_long_data_row():
    matrix = sp.lil_matrix(np.ones((4, 3)))
    matrix.data[0] = [1.0] * 8  # 8 values for 3 columns: scipy would write past its array
    return matrix


def _lil_with_column(column):
    matrix = sp.lil_matrix((4, 3))
    matrix.rows[0], matrix.data[0] = [column], [1.0]
    return matrix


# ---------------------------------------------------------------------------
# entry points that take X
# ---------------------------------------------------------------------------

ESTIMATOR_ENTRY_POINTS = {
    "fit": lambda m, X: GaussianMixture(2, random_state=0).fit(X),
    "fit_predict": lambda m, X: GaussianMixture(2, random_state=0).fit_predict(X),
    "predict": lambda m, X: m.predict(X),
    "predict_proba": lambda m, X: m.predict_proba(X),
    "score_samples": lambda m, X: m.score_samples(X),
    "score": lambda m, X: m.score(X),
    "bic": lambda m, X: m.bic(X),
    "aic": lambda m, X: m.aic(X),
    "fill": lambda m, X: m.fill(X),
    "predict_entries": lambda m, X: m.predict_entries(X, [0], [0]),
    "select_n_components": lambda m, X: fastem.select_n_components(X, [1]),
    "as_observed": lambda m, X: as_observed(X),
}

# (mixture, X) -> call; mixture is (GaussianMixture, post) of common.init.
COURSE_ENTRY_POINTS = {
    "common.init": lambda mix, X: common.init(X, 1),
    "em.estep": lambda mix, X: em.estep(X, mix[0]),
    "em.mstep": lambda mix, X: em.mstep(X, mix[1], mix[0]),
    "em.run": lambda mix, X: em.run(X, mix[0], mix[1]),
    "em.fill_matrix": lambda mix, X: em.fill_matrix(X, mix[0]),
    "naive_em.estep": lambda mix, X: naive_em.estep(X, mix[0]),
    "naive_em.run": lambda mix, X: naive_em.run(X, mix[0], mix[1]),
    "kmeans.estep": lambda mix, X: kmeans.estep(X, mix[0]),
    "kmeans.run": lambda mix, X: kmeans.run(X, mix[0], mix[1]),
}

# Bad dense input: (X, exception, message pattern) for every entry point.
BAD_DENSE = {
    "1-D": (np.ones(3), ValueError, "2-D"),
    "3-D": (np.ones((2, 2, 3)), ValueError, "2-D"),
    "0-D": (np.float64(1.0), ValueError, "2-D"),
    "no rows": (np.ones((0, 3)), ValueError, "0 sample|at least one row"),
    "no columns": (np.ones((4, 0)), ValueError, "0 feature|at least one row"),
    "inf observed": (np.where(np.isnan(X_NAN), 1.0, np.inf), ValueError, "finite"),
    "-inf observed": (np.full((4, 3), -np.inf), ValueError, "finite"),
    "str dtype": (np.full((4, 3), "1"), TypeError, "numbers"),
    "bytes dtype": (np.full((4, 3), b"1"), TypeError, "numbers"),
    "datetime dtype": (np.zeros((4, 3), dtype="datetime64[s]"), TypeError, "numbers"),
    "object with a string": (np.array([[1.0, "a", 2.0]] * 4, dtype=object), TypeError,
                             "numbers"),
}

# Bad sparse input, for the entry points that take sparse matrices.
BAD_SPARSE = {
    "NaN stored": (sp.csr_matrix(np.array([[1.0, np.nan, 0.0]] * 4)), ValueError,
                   "finite"),
    "inf stored (CSC)": (sp.csc_matrix(np.array([[1.0, np.inf, 0.0]] * 4)), ValueError,
                         "finite"),
    "CSR index too large": (_csr(indices=_i32(0, 1, 2, 0, 1, 9, 0, 1, 2, 0, 1, 2)),
                            ValueError, r"CSR indices must lie in \[0, 3\)"),
    "CSR negative index": (_csr(indices=_i32(0, 1, 2, 0, 1, -5, 0, 1, 2, 0, 1, 2)),
                           ValueError, r"CSR indices must lie in \[0, 3\)"),
    "CSR indptr decreasing": (_csr(indptr=_i32(0, 30, 6, 9, 12)), ValueError,
                              "non-decreasing"),
    "CSR indptr end": (_csr(indptr=_i32(0, 3, 6, 9, 11)), ValueError, "end at nnz"),
    "CSR indptr length": (_csr(indptr=_i32(0, 3, 6, 12)), ValueError, "needs 5"),
    "CSR data length": (_csr(data=np.ones(11)), ValueError, "data has 11"),
    "CSR int16 indices": (_csr(indices=np.array([0, 1, 2] * 4, dtype=np.int16)),
                          TypeError, "int32 or int64"),
    "CSR uint64 indices": (_csr(indices=np.array([0, 1, 2] * 4, dtype=np.uint64)),
                           TypeError, "int32 or int64"),
    "CSR float indices": (_csr(indices=np.array([0.0, 1.0, 2.0] * 4)), TypeError,
                          "int32 or int64"),
    "CSC index too large": (_csc(indices=_i32(0, 1, 2, 3, 0, 1, 2, 9, 0, 1, 2, 3)),
                            ValueError, r"CSC indices must lie in \[0, 4\)"),
    "CSC negative index": (_csc(indices=_i32(0, 1, 2, 3, 0, 1, 2, -9, 0, 1, 2, 3)),
                           ValueError, r"CSC indices must lie in \[0, 4\)"),
    "CSC indptr too large": (_csc(indptr=_i32(0, 40, 8, 12)), ValueError,
                             "non-decreasing"),
    "COO row too large": (_coo(row=np.arange(12, dtype=np.int32) + 100), ValueError,
                          r"COO row indices must lie in \[0, 4\)"),
    "COO negative col": (_coo(col=np.zeros(12, dtype=np.int32) - 3), ValueError,
                         r"COO col indices must lie in \[0, 3\)"),
    "COO data length": (_coo(data=np.ones(5)), ValueError, "COO data has 5"),
    "BSR indptr": (_replace(sp.bsr_matrix(np.ones((4, 3)), blocksize=(2, 3)),
                            indptr=_i32(0, 5, 2)), ValueError, "non-decreasing"),
    "LIL data longer than rows": (_lil_with_long_data_row(), ValueError, "LIL"),
    "LIL column too large": (_lil_with_column(7), ValueError, r"must lie in \[0, 3\)"),
    "LIL negative column": (_lil_with_column(-1), ValueError, r"must lie in \[0, 3\)"),
    "complex": (sp.csr_matrix(np.ones((4, 3), dtype=complex)), (ValueError, TypeError),
                "Complex|numbers"),
    "no rows": (sp.csr_matrix((0, 3)), ValueError, "0 sample|at least one row"),
}


@pytest.mark.parametrize("entry", ESTIMATOR_ENTRY_POINTS)
@pytest.mark.parametrize("case", list(BAD_DENSE) + [f"sparse: {c}" for c in BAD_SPARSE])
def test_estimator_entry_points_refuse_bad_x(model, entry, case):
    if case.startswith("sparse: "):
        X, error, pattern = BAD_SPARSE[case.removeprefix("sparse: ")]
    else:
        X, error, pattern = BAD_DENSE[case]
    with pytest.raises(error, match=pattern):
        ESTIMATOR_ENTRY_POINTS[entry](model, X)


@pytest.mark.parametrize("entry", COURSE_ENTRY_POINTS)
@pytest.mark.parametrize("case", list(BAD_DENSE) + ["NaN (the course's missing is 0)",
                                                   "sparse"])
def test_course_entry_points_refuse_bad_x(mixture, entry, case):
    if case == "sparse":
        # The course's functions take dense arrays; the message says what to do.
        X, error, pattern = sp.csr_matrix(X_ZERO), TypeError, "dense"
    elif case.startswith("NaN"):
        X, error, pattern = X_NAN, ValueError, "finite"
    else:
        X, error, pattern = BAD_DENSE[case]
    with pytest.raises(error, match=pattern):
        COURSE_ENTRY_POINTS[entry](mixture, X)


@pytest.mark.parametrize("entry", ["fit", "fit_predict", "select_n_components"])
@pytest.mark.parametrize("X", [
    np.full((4, 3), np.nan), sp.csr_matrix((4, 3)),
    as_observed(np.full((4, 3), np.nan)),
], ids=["dense NaN", "sparse, nothing stored", "ObservedData"])
def test_fitting_needs_an_observed_entry(model, entry, X):
    with pytest.raises(ValueError, match="no observed entry"):
        ESTIMATOR_ENTRY_POINTS[entry](model, X)


@pytest.mark.parametrize("entry", ["em.mstep", "em.run"])
def test_course_fitting_needs_an_observed_entry(mixture, entry):
    with pytest.raises(ValueError, match="no observed entry"):
        COURSE_ENTRY_POINTS[entry](mixture, np.zeros((4, 3)))


@pytest.mark.parametrize("method", ["predict_proba", "score_samples", "fill"])
def test_predicting_rows_with_nothing_observed_is_fine(model, method):
    # Documented: such a row's posterior is the mixture weights.
    result = getattr(model, method)(np.full((2, 3), np.nan))
    assert np.isfinite(result).all()


@pytest.mark.parametrize("method", [
    "predict", "predict_proba", "score_samples", "score", "bic", "aic", "fill",
    "predict_entries"])
@pytest.mark.parametrize("n_features", [2, 4])
def test_wrong_number_of_columns_at_predict_time(model, method, n_features):
    X = np.ones((3, n_features))
    args = (X, [0], [0]) if method == "predict_entries" else (X,)
    with pytest.raises(ValueError, match=f"X has {n_features} features.*expecting 3"):
        getattr(model, method)(*args)


@pytest.mark.parametrize("method", [
    "predict", "predict_proba", "score_samples", "score", "bic", "aic", "fill",
    "predict_entries", "save"])
def test_methods_before_fit(method, tmp_path):
    args = {"predict_entries": (X_NAN, [0], [0]), "save": (tmp_path / "m.npz",)}
    with pytest.raises(NotFittedError, match="call fit"):
        getattr(GaussianMixture(), method)(*args.get(method, (X_NAN,)))
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.parametrize("rows, cols, error, pattern", [
    ([0.5], [0], ValueError, "integers"),
    (["a"], [0], ValueError, "integers"),
    ([4], [0], ValueError, r"rows must lie in \[0, 4\)"),
    ([0], [-1], ValueError, r"cols must lie in \[0, 3\)"),
    ([0, 1], [0], ValueError, "same shape"),
])
def test_predict_entries_refuses_bad_positions(model, rows, cols, error, pattern):
    with pytest.raises(error, match=pattern):
        model.predict_entries(X_NAN, rows, cols)


# ---------------------------------------------------------------------------
# settings
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("settings, error, pattern", [
    ({"n_components": 0}, ValueError, "n_components=0"),
    ({"n_components": 5}, ValueError, "n_components=5 must be <= n_samples=4"),
    ({"n_components": 2.0}, ValueError, "n_components=2.0"),
    ({"n_components": "2"}, ValueError, "n_components='2'"),
    ({"tol": -1e-3}, ValueError, "tol=-0.001.*>= 0"),
    ({"tol": float("nan")}, ValueError, "tol=nan"),
    ({"tol": float("inf")}, ValueError, "tol=inf"),
    ({"min_variance": -0.1}, ValueError, "min_variance=-0.1.*>= 0"),
    ({"min_variance": float("nan")}, ValueError, "min_variance=nan"),
    ({"max_iter": 0}, ValueError, "max_iter=0"),
    ({"n_init": 0}, ValueError, "n_init=0.*>= 1"),
    ({"init_params": "kmeans"}, ValueError, "init_params='kmeans'.*k-means\\+\\+"),
    ({"covariance_type": "full"}, ValueError, "covariance_type='full'.*spherical"),
    ({"covariance_type": ["diag"]}, ValueError, "covariance_type"),
    ({"n_threads": 0}, ValueError, "n_threads=0"),
    ({"n_threads": -1}, ValueError, "n_threads=-1"),
    ({"n_threads": 1.5}, ValueError, "n_threads=1.5"),
    # A huge count used to reach OpenMP, which aborts when it cannot start the threads.
    ({"n_threads": MAX_THREADS + 1}, ValueError, f"n_threads={MAX_THREADS + 1}"),
    ({"n_threads": 2**40}, ValueError, "n_threads"),
    ({"backend": "fortran"}, ValueError, "backend='fortran'"),
    ({"random_state": -1}, ValueError, "random_state=-1"),
    ({"missing_values": "NA"}, ValueError, "missing_values='NA'"),
    ({"warm_start": "yes"}, ValueError, "warm_start='yes'"),
    ({"means_init": np.ones((3, 3))}, ValueError, r"means_init must have shape \(2, 3\)"),
    ({"means_init": np.full((2, 3), np.nan)}, ValueError, "means_init must be finite"),
    ({"variances_init": [1.0, -1.0]}, ValueError, "variances_init must be positive"),
    ({"variances_init": [1.0, 0.0]}, ValueError, "variances_init must be positive"),
    ({"weights_init": [-1.0, 2.0]}, ValueError, "weights_init must be non-negative"),
    ({"weights_init": [1.0, 3.0]}, ValueError, "weights_init must sum to 1"),
    ({"weights_init": ["a", "b"]}, TypeError, "weights_init must be an array of numbers"),
])
def test_invalid_settings(settings, error, pattern):
    with pytest.raises(error, match=pattern):
        GaussianMixture(**{"n_components": 2, **settings}).fit(X_NAN)


def test_driver_refuses_too_many_threads(backend):
    data = as_observed(X_NAN)
    params = Params(np.ones((2, 3)), np.ones(2), np.full(2, 0.5))
    for n_threads in (0, MAX_THREADS + 1, 2**40):
        with pytest.raises(ValueError, match="n_threads"):
            run_em(data, params, backend=backend, n_threads=n_threads)


@pytest.mark.parametrize("kwargs, error, pattern", [
    ({"candidates": []}, ValueError, "candidates"),
    ({"candidates": 2}, TypeError, "candidates=2"),
    ({"candidates": [0]}, ValueError, "candidates"),
    ({"candidates": [5]}, ValueError, "n_samples=4"),
    ({"candidates": [1], "criterion": "aic"}, ValueError, "criterion='aic'"),
    ({"candidates": [1], "heldout_fraction": "a"}, ValueError, "heldout_fraction='a'"),
    ({"candidates": [1], "heldout_fraction": 0.0}, ValueError, "heldout_fraction=0.0"),
    ({"candidates": [1], "refit": "no"}, ValueError, "refit='no'"),
    ({"candidates": [1], "tol": -1.0}, ValueError, "tol=-1.0"),
    ({"candidates": [1], "n_threads": 0}, ValueError, "n_threads=0"),
    ({"candidates": [1], "shape": 3}, TypeError, "shape"),
])
def test_select_n_components_refuses_bad_arguments(kwargs, error, pattern):
    with pytest.raises(error, match=pattern):
        fastem.select_n_components(X_NAN, **kwargs)


@pytest.mark.parametrize("call, error, pattern", [
    (lambda mix: common.init(X_ZERO, 0), ValueError, "K must be an int between 1"),
    (lambda mix: common.init(X_ZERO, 5), ValueError, "K must be an int between 1"),
    (lambda mix: common.init(X_ZERO, 1.5), ValueError, "K must be an int between 1"),
    (lambda mix: em.estep(X_ZERO, None), TypeError, "GaussianMixture"),
    (lambda mix: em.estep(X_ZERO, (1, 2)), TypeError, "GaussianMixture"),
    (lambda mix: em.estep(np.ones((4, 5)), mix[0]), ValueError, "features"),
    (lambda mix: em.estep(X_ZERO, mix[0]._replace(var=-mix[0].var)), ValueError,
     "variances must be positive"),
    (lambda mix: em.estep(X_ZERO, mix[0]._replace(mu=mix[0].mu * np.nan)), ValueError,
     "finite"),
    (lambda mix: em.mstep(X_ZERO, mix[1][:3], mix[0]), ValueError, "post must have shape"),
    (lambda mix: em.mstep(X_ZERO, mix[1] * np.nan, mix[0]), ValueError, "post must hold"),
    (lambda mix: em.mstep(X_ZERO, -mix[1], mix[0]), ValueError, "non-negative"),
    (lambda mix: em.mstep(X_ZERO, mix[1], mix[0], min_variance=-1.0), ValueError,
     "min_variance=-1.0"),
    (lambda mix: naive_em.mstep(X_ZERO, mix[1][:, 0]), ValueError, "post must be 2-D"),
    (lambda mix: kmeans.mstep(X_ZERO, np.ones((3, 2))), ValueError, "post must have shape"),
    (lambda mix: common.rmse(np.ones((2, 2)), np.ones((3, 3))), ValueError, "same shape"),
    (lambda mix: common.bic(np.ones(3), mix[0], -1.0), ValueError, "2-D"),
])
def test_course_functions_refuse_bad_arguments(mixture, call, error, pattern):
    with pytest.raises(error, match=pattern):
        call(mixture)


# ---------------------------------------------------------------------------
# numbers beyond float64: a clear error, never NaN
# ---------------------------------------------------------------------------

# NumPy warns of the overflow (pure backend) before fastem raises.
quiet_overflow = pytest.mark.filterwarnings("ignore:overflow:RuntimeWarning",
                                            "ignore:invalid value:RuntimeWarning")


@quiet_overflow
def test_values_whose_squares_overflow_are_refused_by_fit():
    with pytest.raises(ValueError, match="overflow float64; rescale X"):
        GaussianMixture(2, random_state=0).fit(X_NAN * 1e300)


@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score",
                                    "fill", "bic"])
@quiet_overflow
def test_predicting_rows_that_overflow_is_an_error_not_nan(model, method):
    with pytest.raises(ValueError, match="overflow float64"):
        getattr(model, method)(np.full((2, 3), 1e300))


@quiet_overflow
def test_driver_refuses_an_m_step_that_overflows(backend):
    # Each row's squared distance (1.44e308) is finite, their sum is not.
    data = as_observed(np.array([[1.2e154], [-1.2e154], [1.2e154]]))
    params = Params(np.zeros((1, 1)), np.array([1e300]), np.ones(1))
    with pytest.raises(ValueError, match="M-step of iteration 1.*overflow float64"):
        run_em(data, params, backend=backend)


@quiet_overflow
def test_estep_refuses_rows_that_overflow(backend):
    data = as_observed(np.full((2, 3), 1e300))
    with pytest.raises(ValueError, match="row 0 is not finite"):
        estep(data, Params(np.zeros((2, 3)), np.ones(2), np.full(2, 0.5)),
              backend=backend)


@pytest.mark.parametrize("covariance_type", ["spherical", "diag"])
def test_collapse_without_variance_floor_is_named_by_the_estimator(covariance_type):
    X = np.vstack([np.zeros((30, 3)), np.ones((30, 3))])
    model = GaussianMixture(2, covariance_type=covariance_type, min_variance=0.0,
                            means_init=[[0.0] * 3, [1.0] * 3], random_state=0)
    with pytest.raises(ValueError, match="collapsed.*min_variance > 0"):
        model.fit(X)
    assert not hasattr(model, "means_")  # nothing half-fitted is kept


# ---------------------------------------------------------------------------
# ObservedData, the form the kernels trust
# ---------------------------------------------------------------------------

def test_observed_data_cannot_be_changed_after_its_checks():
    data = as_observed(X_NAN)
    for name in ("data", "indices", "indptr", "n_samples", "n_features"):
        with pytest.raises(AttributeError, match="immutable"):
            setattr(data, name, np.zeros(100, dtype=np.int32))
        with pytest.raises(AttributeError, match="immutable"):
            delattr(data, name)
    assert data.shape == (4, 3)


def test_observed_data_copies_and_pickles_are_checked_anew():
    import copy
    import pickle

    data = as_observed(X_NAN)
    for twin in (copy.copy(data), copy.deepcopy(data), pickle.loads(pickle.dumps(data))):
        assert twin.shape == data.shape
        np.testing.assert_array_equal(twin.indices, data.indices)
        np.testing.assert_array_equal(twin.data, data.data)
    # A pickle whose column indices were tampered with (the int32 pair 1, 0
    # of indices [0 1 0 2 ...] becomes 99, 0) is refused when it is loaded.
    pair = np.array([1, 0], dtype=np.int32).tobytes()
    original = pickle.dumps(data)
    assert original.count(pair) == 1
    tampered = original.replace(pair, np.array([99, 0], dtype=np.int32).tobytes())
    with pytest.raises(ValueError, match="column indices"):
        pickle.loads(tampered)


@pytest.mark.parametrize("n_features, error", [(2.5, TypeError), ("3", TypeError),
                                               (True, TypeError), (0, ValueError)])
def test_observed_data_needs_an_int_number_of_columns(n_features, error):
    with pytest.raises(error, match="n_features"):
        ObservedData(np.ones(2), _i32(0, 1), _i32(0, 2), n_features)


def test_as_observed_checks_the_input_dtype_even_with_a_dtype_given():
    with pytest.raises(TypeError, match="numbers"):
        as_observed(np.full((2, 2), "1"), dtype=np.float64)


# ---------------------------------------------------------------------------
# model files and loaders
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("path, error", [
    (None, TypeError), (3.5, TypeError), ("absent.npz", FileNotFoundError),
    (".", ModelFileError),
])
def test_load_refuses_bad_paths(path, error, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error):
        fastem.load(path)


def _save_npz(path, **arrays):
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def _sparse_members(fmt, **arrays):
    members = {"format": np.array(fmt), "shape": np.array([2, 2]),
               "data": np.ones(2)}
    members.update(arrays)
    return members


@pytest.mark.parametrize("members, pattern", [
    (_sparse_members("csr", indices=_i32(0, 9), indptr=_i32(0, 1, 2)), "malformed"),
    (_sparse_members("csr", indices=_i32(1, 0), indptr=_i32(0, 50, 2)), "malformed"),
    (_sparse_members("csc", indices=_i32(0, 9), indptr=_i32(0, 1, 2)), "malformed"),
    (_sparse_members("csc", indices=_i32(0, -9), indptr=_i32(0, 1, 2)), "malformed"),
    (_sparse_members("bsr", data=np.ones((2, 1, 1)), indices=_i32(0, 1),
                     indptr=_i32(0, 40, 2)), "malformed"),
    # scipy's COO constructor checks the coordinates (covered by scipy).
    (_sparse_members("coo", row=_i32(0, 9), col=_i32(0, 1)), "not a scipy sparse"),
    (_sparse_members("csr", data=np.array(["a", "b"]), indices=_i32(0, 1),
                     indptr=_i32(0, 1, 2)), "real numbers"),
    (_sparse_members("csr", data=np.array([1.0, np.inf]), indices=_i32(0, 1),
                     indptr=_i32(0, 1, 2)), "not finite"),
], ids=["csr index", "csr indptr", "csc index", "csc negative", "bsr indptr",
        "coo index", "strings", "inf"])
def test_npz_loader_refuses_crafted_files(tmp_path, members, pattern):
    # Crafted index arrays used to crash the process in scipy's conversions.
    path = _save_npz(tmp_path / "m.npz", **members)
    for loader in (rating_io.load, rating_io.load_npz):
        with pytest.raises(ValueError, match=pattern):
            loader(path)


def test_loaders_refuse_folders_and_bad_markers(tmp_path):
    with pytest.raises(IsADirectoryError):
        rating_io.load(tmp_path)
    with pytest.raises(IsADirectoryError):
        rating_io.load_dense_text(tmp_path)
    path = tmp_path / "m.txt"
    path.write_text("1 2 3 4 5\n")
    with pytest.raises(TypeError, match="missing_value must be a number"):
        rating_io.load_dense_text(path, missing_value="x")
    with pytest.raises(TypeError, match="float32 or float64"):
        rating_io.load_dense_text(path, dtype=int)


@pytest.mark.parametrize("text, pattern", [
    ("1 2 3 4 5\n1 2 inf 4 5\n", "not a finite rating"),
    ("1 2 3 4 5\n1 2 nan 4 5\n", "not a finite rating"),
    ("1e308 2 3 4 5\n1 2 1e309 4 5\n", "not a finite rating"),
    ("1 2 3 4 5\n1 2 4 5\n", "expected 5 fields"),
    ("1 2 3 4 5\n1 2 x 4 5\n", "'x' is not a number"),
])
def test_dense_loader_refuses_bad_values(tmp_path, text, pattern):
    path = tmp_path / "m.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=pattern):
        rating_io.load(path)


# ---------------------------------------------------------------------------
# the command line: one line on stderr, never a traceback
# ---------------------------------------------------------------------------

def _cli(tmp_path, *args):
    return subprocess.run([sys.executable, "-m", "fastem", *map(str, args)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_cli_refuses_bad_input_in_one_line(tmp_path):
    _save_npz(tmp_path / "bad.npz", **_sparse_members(
        "csc", indices=_i32(0, 9), indptr=_i32(0, 1, 2)))
    (tmp_path / "zeros.txt").write_text("0 0 0 0 0\n0 0 0 0 0\n")
    (tmp_path / "r.csv").write_text("1,1,5\n1,2,3\n2,1,4\n")
    (tmp_path / "taken.npz").write_text("keep me")
    cases = [
        (("fit", "bad.npz", "-k", 1), 1, "malformed sparse matrix"),
        (("fit", "zeros.txt", "-k", 1), 1, "holds no rating"),
        (("fit", "r.csv", "-k", 1, "--threads", MAX_THREADS + 1), 2, "--threads"),
        (("fit", "r.csv", "-k", 0), 2, "-k"),
        (("fit", "r.csv", "-k", 1, "--tol", "nan"), 2, "--tol"),
        # The output is checked before the data are read: no work is lost.
        (("fit", "absent.csv", "-k", 1, "-o", "taken.npz"), 1, "taken.npz exists"),
    ]
    for args, status, fragment in cases:
        result = _cli(tmp_path, *args)
        assert result.returncode == status, (args, result.stderr)
        assert "Traceback" not in result.stderr
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("fastem: error: "), result.stderr
        assert fragment in lines[0], (args, lines[0])
    assert (tmp_path / "taken.npz").read_text() == "keep me"
