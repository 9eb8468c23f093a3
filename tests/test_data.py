"""fastem._data: every input form gives the same validated CSR, and bad input is refused."""

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_array_equal

import fastem
from fastem import ObservedData, as_observed

# 3 x 4, missing entries as NaN; row 1 has nothing observed, column 3 nothing either.
DENSE_NAN = np.array([
    [1.0, np.nan, 2.5, np.nan],
    [np.nan, np.nan, np.nan, np.nan],
    [4.0, -3.0, np.nan, np.nan],
])
EXPECTED_DATA = np.array([1.0, 2.5, 4.0, -3.0])
EXPECTED_INDICES = np.array([0, 2, 0, 1])
EXPECTED_INDPTR = np.array([0, 2, 2, 4])


def assert_same_observed(a, b):
    assert a.shape == b.shape
    assert a.n_samples == b.n_samples and a.n_features == b.n_features
    assert a.data.dtype == b.data.dtype
    assert a.indices.dtype == a.indptr.dtype
    assert_array_equal(a.data, b.data)
    assert_array_equal(a.indices, b.indices)
    assert_array_equal(a.indptr, b.indptr)


def assert_expected(obs):
    assert obs.shape == (3, 4)
    assert obs.nnz == 4
    assert_array_equal(obs.data, EXPECTED_DATA)
    assert_array_equal(obs.indices, EXPECTED_INDICES)
    assert_array_equal(obs.indptr, EXPECTED_INDPTR)
    assert_array_equal(obs.row_counts, [2.0, 0.0, 2.0])
    assert obs.row_counts.dtype == np.float64


def sparse_forms(dense_nan):
    """The observed entries of ``dense_nan`` as scipy csr, csc and coo."""
    rows, cols = np.nonzero(~np.isnan(dense_nan))
    values = dense_nan[rows, cols]
    coo = sp.coo_matrix((values, (rows, cols)), shape=dense_nan.shape)
    return {
        "coo": coo,
        "csr": coo.tocsr(),
        "csc": coo.tocsc(),
        "csr_array": sp.csr_array(coo),
        "coo_unsorted": sp.coo_matrix((values[::-1], (rows[::-1], cols[::-1])),
                                      shape=dense_nan.shape),
    }


# ---------------------------------------------------------------------------
# Dense input
# ---------------------------------------------------------------------------


def test_dense_nan_missing():
    assert_expected(as_observed(DENSE_NAN))
    assert_expected(as_observed(DENSE_NAN, missing_values=np.nan))
    assert_expected(as_observed(DENSE_NAN, missing_values=float("nan")))


def test_dense_zero_missing():
    # The course's file convention: 0 marks a missing entry.
    assert_expected(as_observed(np.nan_to_num(DENSE_NAN, nan=0.0), missing_values=0))
    assert_expected(as_observed(np.nan_to_num(DENSE_NAN, nan=0.0), missing_values=0.0))


def test_dense_other_marker():
    X = np.nan_to_num(DENSE_NAN, nan=-1.0)
    assert_expected(as_observed(X, missing_values=-1))


def test_dense_all_observed():
    X = np.arange(12.0).reshape(3, 4)
    obs = as_observed(X, missing_values=None)
    assert obs.nnz == 12
    assert_array_equal(obs.data, X.ravel())
    assert_array_equal(obs.indices, np.tile(np.arange(4), 3))
    assert_array_equal(obs.indptr, [0, 4, 8, 12])
    # zeros are ordinary values when nothing is missing
    assert obs.data[0] == 0.0


def test_dense_nan_marker_on_integers_means_nothing_missing():
    X = np.array([[0, 1], [2, 3]])
    obs = as_observed(X)  # default missing_values=np.nan: integers hold no NaN
    assert obs.nnz == 4
    assert obs.data.dtype == np.float64


def test_dense_nan_marker_of_numpy_float_types():
    # "NaN matches NaN" whatever the scalar type of the marker.
    X32 = DENSE_NAN.astype(np.float32)
    assert_array_equal(as_observed(X32, missing_values=np.float64("nan")).indices,
                       EXPECTED_INDICES)
    assert_array_equal(as_observed(X32, missing_values=np.float32("nan")).indices,
                       EXPECTED_INDICES)


def test_dense_from_nested_lists():
    obs = as_observed([[1, 0], [0, 2]], missing_values=0)
    assert_array_equal(obs.data, [1.0, 2.0])
    assert_array_equal(obs.indices, [0, 1])
    assert obs.data.dtype == np.float64


# ---------------------------------------------------------------------------
# Sparse input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["coo", "csr", "csc", "csr_array", "coo_unsorted"])
def test_sparse_forms(form):
    assert_expected(as_observed(sparse_forms(DENSE_NAN)[form]))


def test_sparse_explicit_zeros_are_observed():
    data = np.array([0.0, 5.0, 0.0])
    X = sp.csr_matrix((data, np.array([1, 0, 2]), np.array([0, 2, 3])), shape=(2, 3))
    obs = as_observed(X)
    assert obs.nnz == 3
    assert_array_equal(obs.data, [5.0, 0.0, 0.0])  # canonical (sorted) order
    assert_array_equal(obs.indices, [0, 1, 2])
    assert_array_equal(obs.indptr, [0, 2, 3])
    # the same through CSC and COO
    assert_same_observed(as_observed(X.tocsc()), obs)
    assert_same_observed(as_observed(X.tocoo()), obs)


# (LIL and DOK cannot store a pair twice.)
@pytest.mark.parametrize("fmt", ["coo", "csr", "csc", "bsr"])
def test_repeated_pairs_are_refused_never_summed(fmt):
    # Two ratings of 4 for one pair are not a rating of 8: a ValueError naming
    # how many entries repeat a pair and the first of them.
    rows = np.array([0, 0, 1, 0, 2])
    cols = np.array([1, 1, 0, 1, 2])
    values = np.array([4.0, 4.0, 4.0, 3.0, 1.0])
    coo = sp.coo_matrix((values, (rows, cols)), shape=(3, 3))
    if fmt == "coo":
        X = coo
    else:
        # Built from its arrays: scipy keeps the repeated entries stored.
        major, minor = (rows, cols) if fmt != "csc" else (cols, rows)
        order = np.argsort(major, kind="stable")
        indptr = np.concatenate([[0], np.cumsum(np.bincount(major, minlength=3))])
        X = sp.csr_matrix((values[order], minor[order], indptr), shape=(3, 3))
        X = X if fmt != "csc" else sp.csc_matrix((values[order], minor[order], indptr),
                                                 shape=(3, 3))
        if fmt == "bsr":
            X = sp.bsr_matrix((values[order][:, None, None], minor[order], indptr),
                              shape=(3, 3))
    with pytest.raises(ValueError, match=r"twice or more: 2 repeated entries, the first "
                                         r"at \(0, 1\); a pair is one observation"):
        as_observed(X)
    with pytest.raises(ValueError, match="never summed"):
        fastem.GaussianMixture(1).fit(X)


def test_sparse_csr_with_unsorted_indices():
    X = sp.csr_matrix((np.array([1.0, 2.0, 3.0]), np.array([2, 0, 1]), np.array([0, 3])),
                      shape=(1, 3))
    before = (X.data.copy(), X.indices.copy())
    obs = as_observed(X)
    assert_array_equal(obs.data, [2.0, 3.0, 1.0])
    assert_array_equal(obs.indices, [0, 1, 2])
    # the caller's matrix is not rearranged in place
    assert_array_equal(X.data, before[0])
    assert_array_equal(X.indices, before[1])


def test_sparse_mixed_index_dtypes_are_promoted():
    X = sp.csr_matrix(np.eye(3))
    X.indices = X.indices.astype(np.int64)
    X.indptr = X.indptr.astype(np.int32)
    obs = as_observed(X)
    assert obs.indices.dtype == obs.indptr.dtype == np.int64
    assert_array_equal(obs.indices, [0, 1, 2])


def test_same_content_in_every_form():
    rng = np.random.default_rng(3)
    X = rng.uniform(1.0, 5.0, size=(9, 6))
    X[rng.random(X.shape) < 0.4] = np.nan
    X[4] = np.nan
    X[:, 2] = np.nan
    reference = as_observed(X)
    assert_same_observed(as_observed(np.nan_to_num(X, nan=0.0), missing_values=0), reference)
    for form in sparse_forms(X).values():
        assert_same_observed(as_observed(form), reference)
    # converting again, or building directly from its arrays, changes nothing
    assert as_observed(reference) is reference
    direct = ObservedData(reference.data, reference.indices, reference.indptr, 6)
    assert_same_observed(direct, reference)
    # and the CSR view gives back the observed entries
    dense = reference.to_csr().toarray()
    observed = ~np.isnan(X)
    assert_array_equal(dense[observed], X[observed])
    assert_array_equal(dense[~observed], 0.0)


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 15), d=st.integers(1, 15), seed=st.integers(0, 2**32 - 1),
       missing=st.floats(0.0, 1.0))
def test_dense_and_sparse_agree(n, d, seed, missing):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    X[rng.random((n, d)) < missing] = np.nan
    obs = as_observed(X)
    observed = ~np.isnan(X)
    assert obs.nnz == observed.sum()
    assert_array_equal(obs.data, X[observed])  # row-major order is CSR order
    assert_array_equal(obs.indices, np.nonzero(observed)[1])
    assert_array_equal(obs.indptr, np.concatenate([[0], np.cumsum(observed.sum(axis=1))]))
    for form in sparse_forms(X).values():
        assert_same_observed(as_observed(form), obs)


# ---------------------------------------------------------------------------
# Dtypes
# ---------------------------------------------------------------------------


def test_repr_says_shape_entries_and_dtype():
    data = as_observed(np.array([[1.0, np.nan], [np.nan, 2.0], [3.0, 4.0]], np.float32))
    assert repr(data) == "ObservedData(n_samples=3, n_features=2, nnz=4, dtype=float32)"


def test_float32_is_kept():
    obs = as_observed(DENSE_NAN.astype(np.float32))
    assert obs.data.dtype == np.float32
    assert_array_equal(obs.data, EXPECTED_DATA.astype(np.float32))
    sparse = as_observed(sparse_forms(DENSE_NAN.astype(np.float32))["csc"])
    assert sparse.data.dtype == np.float32


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint16, np.float16, bool])
def test_other_numbers_become_float64(dtype):
    X = np.array([[1, 0], [0, 1]], dtype=dtype)
    obs = as_observed(X, missing_values=0)
    assert obs.data.dtype == np.float64
    assert_array_equal(obs.data, [1.0, 1.0])
    if dtype is not np.float16:  # scipy.sparse has no float16
        assert as_observed(sp.csr_matrix(X)).data.dtype == np.float64


@pytest.mark.parametrize("given_dtype, input_dtype", [
    (np.float64, np.float32), (np.float32, np.float64), ("float32", np.int64),
])
def test_dtype_argument(given_dtype, input_dtype):
    X = np.array([[1, 2], [3, 4]], dtype=input_dtype)
    obs = as_observed(X, missing_values=None, dtype=given_dtype)
    assert obs.data.dtype == np.dtype(given_dtype)
    converted = as_observed(as_observed(X, missing_values=None), dtype=given_dtype)
    assert converted.data.dtype == np.dtype(given_dtype)
    assert_array_equal(converted.data, [1, 2, 3, 4])


# ---------------------------------------------------------------------------
# Read-only arrays
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("make", [
    lambda: as_observed(DENSE_NAN),
    lambda: as_observed(sparse_forms(DENSE_NAN)["csr"]),
    lambda: ObservedData(EXPECTED_DATA.copy(), EXPECTED_INDICES.astype(np.int32),
                         EXPECTED_INDPTR.astype(np.int32), 4),
])
def test_stored_arrays_are_read_only(make):
    obs = make()
    for name in ("data", "indices", "indptr"):
        array = getattr(obs, name)
        assert not array.flags.writeable, name
        with pytest.raises(ValueError, match="read-only"):
            array[0] = 1


def test_caller_arrays_stay_writeable():
    data = EXPECTED_DATA.copy()
    indices = EXPECTED_INDICES.astype(np.int64)
    indptr = EXPECTED_INDPTR.astype(np.int64)
    ObservedData(data, indices, indptr, 4)
    assert data.flags.writeable and indices.flags.writeable and indptr.flags.writeable


# ---------------------------------------------------------------------------
# Refused input
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("X", [
    np.ones(3), np.ones((2, 2, 2)), np.float64(1.0), sp.coo_array(np.ones(3)),
], ids=["1-D", "3-D", "0-D", "sparse 1-D"])
def test_not_two_dimensional(X):
    with pytest.raises(ValueError, match="2-D"):
        as_observed(X)


@pytest.mark.parametrize("X", [
    np.ones((0, 3)), np.ones((3, 0)), sp.csr_matrix((0, 3)), sp.csr_matrix((3, 0)),
])
def test_empty(X):
    with pytest.raises(ValueError, match="at least one row and one column"):
        as_observed(X)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("form", ["csr", "csc", "coo"])
def test_non_finite_stored_in_sparse(bad, form):
    X = sp.csr_matrix((np.array([1.0, bad]), np.array([0, 1]), np.array([0, 1, 2])),
                      shape=(2, 2)).asformat(form)
    with pytest.raises(ValueError, match="finite"):
        as_observed(X)


def test_non_finite_observed_in_dense():
    X = np.array([[1.0, np.inf], [np.nan, 2.0]])
    with pytest.raises(ValueError, match="finite"):
        as_observed(X)  # inf is not missing
    with pytest.raises(ValueError, match="finite"):
        as_observed(np.array([[1.0, 0.0], [np.nan, 2.0]]), missing_values=0)  # NaN is not 0


@pytest.mark.parametrize("X", [
    np.array([[1.0, "a"]], dtype=object),
    np.array([[1, 2]], dtype=object),
    np.array([["1", "2"]]),
    np.array([[b"1"]]),
    np.array([[1 + 2j]]),
], ids=["object", "object numbers", "str", "bytes", "complex"])
def test_non_numeric_dtypes(X):
    with pytest.raises(TypeError, match="numbers"):
        as_observed(X)


def test_bad_dtype_argument():
    with pytest.raises(TypeError, match="float32 or float64"):
        as_observed(np.ones((2, 2)), dtype=np.int64)


def csr_parts(**changes):
    """A valid 2 x 3 CSR (row 0: columns 0, 2; row 1: column 1), with changes."""
    parts = {
        "data": np.array([1.0, 2.0, 3.0]),
        "indices": np.array([0, 2, 1], dtype=np.int32),
        "indptr": np.array([0, 2, 3], dtype=np.int32),
        "n_features": 3,
    }
    parts.update(changes)
    return parts


def test_valid_csr_parts():
    obs = ObservedData(**csr_parts())
    assert obs.shape == (2, 3)
    # unsorted columns within a row are fine as long as none repeats
    ObservedData(**csr_parts(indices=np.array([2, 0, 1], dtype=np.int32)))
    # the same column in different rows is fine
    ObservedData(**csr_parts(indices=np.array([0, 1, 1], dtype=np.int32)))
    # empty rows, and no observed entry at all
    ObservedData(np.array([]), np.array([], dtype=np.int64), np.zeros(4, dtype=np.int64), 2)


@pytest.mark.parametrize("changes, error, word", [
    ({"indices": np.array([0, 3, 1], dtype=np.int32)}, ValueError, "column indices"),
    ({"indices": np.array([0, -1, 1], dtype=np.int32)}, ValueError, "column indices"),
    ({"indptr": np.array([1, 2, 3], dtype=np.int32)}, ValueError, "start at 0"),
    ({"indptr": np.array([0, 2, 2], dtype=np.int32)}, ValueError, "end at nnz"),
    ({"indptr": np.array([0, 2, 4], dtype=np.int32)}, ValueError, "end at nnz"),
    ({"indptr": np.array([0, 3, 1, 3], dtype=np.int32)}, ValueError, "non-decreasing"),
    ({"indptr": np.array([], dtype=np.int32)}, ValueError, "indptr"),
    ({"data": np.array([1.0, 2.0])}, ValueError, "indices has"),
    ({"indices": np.array([0, 2], dtype=np.int32)}, ValueError, "indices has"),
    ({"data": np.ones((3, 1))}, ValueError, "1-D"),
    ({"indices": np.array([0, 0, 1], dtype=np.int32)}, ValueError, "twice"),
    ({"indices": np.array([0, 2, 1], dtype=np.int16),
      "indptr": np.array([0, 2, 3], dtype=np.int16)}, TypeError, "int32 or int64"),
    ({"indices": np.array([0.0, 2.0, 1.0]),
      "indptr": np.array([0.0, 2.0, 3.0])}, TypeError, "int32 or int64"),
    ({"indices": np.array([0, 2, 1], dtype=np.uint32),
      "indptr": np.array([0, 2, 3], dtype=np.uint32)}, TypeError, "int32 or int64"),
    ({"indptr": np.array([0, 2, 3], dtype=np.int64)}, TypeError, "share one dtype"),
    ({"data": np.array([1, 2, 3])}, TypeError, "float32 or float64"),
    ({"data": np.array([1.0, np.nan, 3.0])}, ValueError, "finite"),
    ({"data": np.array([1.0, 2.0, np.inf])}, ValueError, "finite"),
    ({"n_features": 0}, ValueError, "n_features"),
    ({"n_features": 2}, ValueError, "column indices"),
], ids=[
    "index too large", "negative index", "indptr start", "indptr end short",
    "indptr end long", "indptr decreasing", "indptr empty", "data shorter",
    "indices shorter", "2-D data", "duplicate column", "int16 indices",
    "float indices", "uint32 indices", "mixed index dtypes", "int data", "NaN data",
    "inf data", "no features", "too few features",
])
def test_malformed_csr(changes, error, word):
    with pytest.raises(error, match=word):
        ObservedData(**csr_parts(**changes))


def test_duplicate_column_not_adjacent():
    # Row 0 names column 1 at positions 0 and 2: not caught by a sortedness check alone.
    with pytest.raises(ValueError, match="twice"):
        ObservedData(np.ones(4), np.array([1, 0, 1, 2], dtype=np.int64),
                     np.array([0, 3, 4], dtype=np.int64), 3)


@pytest.mark.parametrize("source", ["scipy csr", "arrays"])
def test_validated_indices_do_not_follow_later_changes_to_the_input(source):
    # The kernels trust validated indices (the compiled ones without bounds
    # checks), so writing into the caller's arrays afterwards must not reach them.
    indices = np.array([0, 1, 2], dtype=np.int32)
    indptr = np.array([0, 1, 2, 3], dtype=np.int32)
    if source == "scipy csr":
        X = sp.csr_matrix((np.ones(3), indices, indptr), shape=(3, 3))
        obs = as_observed(X)
        X.indices[0] = 10**8
        X.indptr[1] = 10**8
    else:
        obs = ObservedData(np.ones(3), indices, indptr, 3)
        indices[0] = 10**8
        indptr[1] = 10**8
    assert_array_equal(obs.indices, [0, 1, 2])
    assert_array_equal(obs.indptr, [0, 1, 2, 3])
