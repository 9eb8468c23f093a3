"""fastem on Dask: the same fit from row blocks on a cluster as from memory.

One ``distributed.LocalCluster`` (2 worker processes of 1 thread each, on
loopback) serves the module. Every fit is compared with the in-memory fit of
the same data: parameters to 1e-9 relative, the same iterations and the same
log-likelihood (an exactly rounded sum in both). Dask is an optional extra:
without it these tests skip, except under CI=true, where they fail.
"""

import importlib
import math
import os
import signal
import subprocess
import sys
import threading
import warnings
from fractions import Fraction

import numpy as np
import pytest
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal

import fastem
from fastem import ConvergenceWarning, GaussianMixture
from fastem.datasets import make_ratings

RTOL = 1e-9  # the required agreement with the in-memory fit
TIMEOUT = 120  # seconds: bound of every wait on the cluster


def test_importing_fastem_does_not_import_dask():
    code = ("import sys, fastem, fastem.mixture, fastem.course; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=TIMEOUT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def _import_or_skip(name):
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        reason = f"{name} cannot be imported ({exc}); install fastem[dask]"
        if os.environ.get("CI", "") == "true":
            pytest.fail(f"{reason} (CI=true: this is an error, not a skip)", pytrace=False)
        pytest.skip(reason, allow_module_level=True)


dask = _import_or_skip("dask")
da = _import_or_skip("dask.array")
dd = _import_or_skip("dask.dataframe")
pd = _import_or_skip("pandas")
distributed = _import_or_skip("distributed")

from fastem._pass import exact_sum, exact_to_float  # noqa: E402
from fastem.dask import Triples, from_triples  # noqa: E402


@pytest.fixture(scope="module")
def client():
    """A Client of 2 worker processes with 1 thread each, on loopback."""
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None,
                                  silence_logs=40) as cluster:
        with distributed.Client(cluster, timeout=TIMEOUT) as client:
            client.wait_for_workers(2, timeout=TIMEOUT)
            yield client


@pytest.fixture(scope="module")
def ratings():
    """3 taste groups, 500 users x 40 items, 5,000 ratings (CSR)."""
    return make_ratings(500, 40, 5000, n_groups=3, random_state=3).to_csr()


def _dense(csr, marker=np.nan):
    dense = csr.toarray()
    dense[csr.toarray() == 0] = marker  # the ratings are 1..5: 0 is never a rating
    return dense


def _fit(X, **settings):
    settings.setdefault("n_components", 3)
    settings.setdefault("random_state", 0)
    settings.setdefault("tol", 1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return GaussianMixture(**settings).fit(X)


def _assert_same_fit(got, expected):
    for name in ("weights_", "means_", "variances_"):
        assert_allclose(getattr(got, name), getattr(expected, name), rtol=RTOL, atol=0,
                        err_msg=name)
    assert got.n_iter_ == expected.n_iter_
    assert got.converged_ == expected.converged_
    assert_allclose(got.log_likelihood_, expected.log_likelihood_, rtol=1e-12)


def _triples_frame(csr, names=("row", "col", "value"), npartitions=3, seed=0):
    coo = csr.tocoo()
    frame = pd.DataFrame({names[0]: coo.row.astype(np.int64),
                          names[1]: coo.col.astype(np.int64), names[2]: coo.data,
                          "other": 1})
    frame = frame.sample(frac=1.0, random_state=seed)  # any order
    return dd.from_pandas(frame, npartitions=npartitions, sort=False)


# ---------------------------------------------------------------------------
# exact sums
# ---------------------------------------------------------------------------

def test_exact_sum_of_blocks_rounds_like_fsum():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(size=1000) * 10.0**rng.integers(-300, 300, 1000),
                             [1e307, 1e307, -1e307, -1e307, 5e-324, -1e-310, 1.0, 1e-16],
                             np.zeros(5)])
    rng.shuffle(values)
    blocks = np.array_split(values, 7)
    total = sum(exact_sum(block) for block in blocks)
    assert exact_to_float(total) == math.fsum(values)
    assert total == sum(Fraction(value) for value in values) * 2**1127
    cancel = np.array([1.0, 1e100, 1.0, -1e100])
    assert exact_to_float(exact_sum(cancel)) == math.fsum(cancel) == 2.0
    assert exact_to_float(exact_sum(np.empty(0))) == 0.0
    with pytest.raises(ValueError, match="overflows"):
        exact_to_float(exact_sum(np.array([1.5e308, 1.5e308])))


# ---------------------------------------------------------------------------
# fits on the cluster equal fits in memory
# ---------------------------------------------------------------------------

def test_dense_nan_blocks_kmeans_plus_plus(client, ratings):
    dense = _dense(ratings)
    X = da.from_array(dense, chunks=(120, -1))
    got = _fit(X)
    _assert_same_fit(got, _fit(dense))
    assert got.converged_


@pytest.mark.parametrize("init, covariance_type", [("random_from_data", "diag"),
                                                   ("course", "spherical")])
def test_dense_zero_marker_blocks(client, ratings, init, covariance_type):
    dense = _dense(ratings, marker=0.0)
    X = da.from_array(dense, chunks=(200, -1))
    settings = dict(missing_values=0, init_params=init, covariance_type=covariance_type)
    _assert_same_fit(_fit(X, **settings), _fit(dense, **settings))


@pytest.mark.parametrize("init, covariance_type", [("k-means++", "diag"),
                                                   ("random_from_data", "spherical"),
                                                   ("course", "diag")])
def test_sparse_blocks(client, ratings, init, covariance_type):
    X = da.from_array(ratings, chunks=(150, -1), asarray=False)
    assert isinstance(X.blocks[0].compute(), sp.csr_matrix)
    settings = dict(init_params=init, covariance_type=covariance_type)
    _assert_same_fit(_fit(X, **settings), _fit(ratings, **settings))


def _uneven(csr):
    """Uneven row chunks: an empty chunk, chunks of 1 row, rows with nothing observed."""
    csr = csr.tolil()
    csr[200:230] = 0  # a whole chunk of rows with no observed entry ...
    csr = csr.tocsr()
    csr.eliminate_zeros()  # ... (stored = observed)
    chunks = (0, 1, 199, 30, 0, 170, 99, 1)
    assert sum(chunks) == csr.shape[0]
    return csr, (chunks, (csr.shape[1],))


def test_uneven_and_empty_blocks(client, ratings):
    csr, chunks = _uneven(ratings)
    X = da.from_array(csr, chunks=chunks, asarray=False)
    _assert_same_fit(_fit(X), _fit(csr))
    dense = _dense(csr)
    X = da.from_array(dense, chunks=chunks)
    gm = _fit(X, covariance_type="diag", init_params="random_from_data")
    _assert_same_fit(gm, _fit(dense, covariance_type="diag", init_params="random_from_data"))
    # The predictions keep the chunks of X, the empty ones included.
    proba = gm.predict_proba(X)
    assert proba.chunks[0] == chunks[0]
    assert_allclose(proba.compute(), gm.predict_proba(dense), rtol=1e-12, atol=1e-300)


def test_unknown_chunk_sizes(client, ratings):
    dense = _dense(ratings)
    pieces = [da.from_delayed(dask.delayed(np.array)(dense[a:b]), shape=(np.nan, 40),
                              dtype=dense.dtype) for a, b in ((0, 250), (250, 500))]
    X = da.concatenate(pieces)
    assert math.isnan(X.shape[0])
    gm = _fit(X, init_params="course")
    _assert_same_fit(gm, _fit(dense, init_params="course"))
    assert_array_equal(gm.predict(X).compute(), gm.predict(dense))
    rows, cols = np.array([0, 499, 260]), np.array([0, 39, 7])
    assert_allclose(gm.predict_entries(X, rows, cols), gm.predict_entries(dense, rows, cols),
                    rtol=1e-12)


def test_triples_with_column_names_and_more_columns(client, ratings):
    frame = _triples_frame(ratings, names=("user", "item", "rating"))
    X = from_triples(frame, row="user", col="item", value="rating", n_features=45,
                     npartitions=4)
    wider = sp.csr_matrix((ratings.data, ratings.indices, ratings.indptr),
                          shape=(ratings.shape[0], 45))
    gm = _fit(X, covariance_type="diag")
    assert gm.n_features_in_ == 45
    _assert_same_fit(gm, _fit(wider, covariance_type="diag"))
    # Predictions follow the row blocks of the shuffle; the model gives d.
    labels = gm.predict(X)
    assert labels.shape == (500,)
    assert_array_equal(labels.compute(), gm.predict(wider))


def test_triples_dataframe_directly(client, ratings):
    frame = _triples_frame(ratings)
    gm = _fit(frame, init_params="random_from_data")
    _assert_same_fit(gm, _fit(ratings, init_params="random_from_data"))
    assert_allclose(gm.score_samples(frame).compute(), gm.score_samples(ratings),
                    rtol=1e-12)


@pytest.mark.parametrize("covariance_type", ["spherical", "diag"])
def test_map_options_on_blocks(client, ratings, covariance_type):
    # The prior and the fixed variance enter the M-step on the client: the
    # blocks' passes are the same.
    X = da.from_array(ratings, chunks=(150, -1), asarray=False)
    settings = dict(covariance_type=covariance_type, mean_prior_strength=6.0,
                    mean_prior=2.5, fixed_variance=1.1)
    got = _fit(X, **settings)
    _assert_same_fit(got, _fit(ratings, **settings))
    assert_array_equal(got.variances_, 1.1)


def test_restarts_and_float32(client, ratings):
    data32 = ratings.astype(np.float32)
    X = da.from_array(data32, chunks=(130, -1), asarray=False)
    got = _fit(X, n_init=3, random_state=5)
    _assert_same_fit(got, _fit(data32, n_init=3, random_state=5))
    assert got.fill(X).dtype == np.float32


def test_threaded_scheduler_without_client(ratings):
    dense = _dense(ratings)
    X = da.from_array(dense, chunks=(100, -1))
    with dask.config.set(scheduler="threads"):
        got = _fit(X, covariance_type="diag")
        from_frame = _fit(_triples_frame(ratings), init_params="course")
    _assert_same_fit(got, _fit(dense, covariance_type="diag"))
    _assert_same_fit(from_frame, _fit(ratings, init_params="course"))


def test_predictions_equal_in_memory(client, ratings):
    dense = _dense(ratings)
    X = da.from_array(dense, chunks=(180, -1))
    gm = _fit(dense)
    proba = gm.predict_proba(X)
    assert isinstance(proba, da.Array) and proba.shape == (500, 3)
    assert_allclose(proba.compute(), gm.predict_proba(dense), rtol=1e-12, atol=1e-300)
    assert_array_equal(gm.predict(X).compute(), gm.predict(dense))
    assert_allclose(gm.score_samples(X).compute(), gm.score_samples(dense), rtol=1e-12)
    filled = gm.fill(X)
    assert isinstance(filled, da.Array)
    assert_allclose(filled.compute(), gm.fill(dense), rtol=1e-12)
    # Exactly rounded totals: the same floats as in memory.
    assert gm.score(X) == gm.score(dense)
    assert gm.bic(X) == gm.bic(dense)
    assert gm.aic(X) == gm.aic(dense)
    rows = np.array([[0, 499], [250, 3]])
    cols = np.array([[5, 39], [0, 17]])
    entries = gm.predict_entries(X, rows, cols)
    assert entries.shape == (2, 2)
    assert_allclose(entries, gm.predict_entries(dense, rows, cols), rtol=1e-12)
    assert gm.predict_entries(X, [], []).shape == (0,)
    # fit_predict keeps the labels on the workers until asked.
    labels = GaussianMixture(3, random_state=0).fit_predict(X)
    assert isinstance(labels, da.Array)
    assert_array_equal(labels.compute(), gm.predict(dense))


def test_warm_start_continues_on_blocks(client, ratings):
    X = da.from_array(ratings, chunks=(250, -1), asarray=False)
    got = _fit(X, max_iter=3, warm_start=True)
    got.set_params(max_iter=50).fit(X)
    expected = _fit(ratings, max_iter=3, warm_start=True)
    expected.set_params(max_iter=50).fit(ratings)
    _assert_same_fit(got, expected)


class _WorkerRemoved:
    """A scheduler plugin: an event set when the scheduler drops a given worker."""

    def __init__(self):
        self.address = None
        self.removed = threading.Event()

    def remove_worker(self, scheduler, worker, **kwargs):
        if worker == self.address:
            self.removed.set()


def test_a_worker_killed_during_the_fit(client, ratings):
    dense = _dense(ratings)
    X = da.from_array(dense, chunks=(50, -1))  # 10 blocks, some on each worker
    expected = _fit(dense, init_params="random_from_data")
    pids = client.run(os.getpid)
    assert len(pids) == 2
    watch = _WorkerRemoved()
    watch.address, victim = sorted(pids.items())[0]
    scheduler = client.cluster.scheduler  # in this process (LocalCluster)
    scheduler.add_plugin(watch, name="fastem-test-worker-removed")

    def progress(restart, n_restarts):
        def callback(iteration, log_likelihood):
            if iteration == 3 and not watch.removed.is_set():
                # Between two iterations; its blocks are lost with it.
                held = client.has_what()[watch.address]
                assert any(str(key).startswith("_array_block") for key in held)
                os.kill(victim, signal.SIGKILL)
                assert watch.removed.wait(TIMEOUT), "the scheduler kept the killed worker"
        return callback

    gm = GaussianMixture(3, init_params="random_from_data", random_state=0)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm.fit(X, progress=progress)
    finally:
        scheduler.remove_plugin(name="fastem-test-worker-removed")
    assert watch.removed.is_set()
    _assert_same_fit(gm, expected)
    # The nanny restarted the worker: the cluster is whole again for the next tests.
    client.wait_for_workers(2, timeout=TIMEOUT)
    assert victim not in client.run(os.getpid).values()


# ---------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------

def test_bad_dask_arrays(ratings):
    dense = _dense(ratings)
    gm = GaussianMixture(2)
    with dask.config.set(scheduler="sync"):
        with pytest.raises(ValueError, match=r"chunked along its columns.*rechunk"):
            gm.fit(da.from_array(dense, chunks=(100, 20)))
        with pytest.raises(ValueError, match="2-D"):
            gm.fit(da.from_array(dense[:, 0], chunks=100))
        with pytest.raises(ValueError, match="Complex"):
            gm.fit(da.from_array(dense.astype(complex), chunks=(100, -1)))
        with pytest.raises(TypeError, match="numbers"):
            gm.fit(da.from_array(dense.astype(str), chunks=(100, -1)))
        with pytest.raises(ValueError, match="0 sample"):
            gm.fit(da.zeros((0, 4), chunks=(10, -1)))
        with pytest.raises(ValueError, match="no observed entry"):
            gm.fit(da.full((10, 4), np.nan, chunks=(5, -1)))
        with pytest.raises(ValueError, match="must be finite"):
            gm.fit(da.from_array(np.where(np.isnan(dense), np.inf, dense), chunks=(100, -1)))
        with pytest.raises(TypeError, match="cannot be read as a matrix"):
            gm.fit(dask.delayed(dense))
        unknown = da.from_array(dense, chunks=(100, -1))
        unknown = unknown[unknown[:, 0] > 0]  # unknown rows only: fine
        fitted = _fit(da.from_array(dense, chunks=(100, -1)), max_iter=2)
        with pytest.raises(ValueError, match="expecting 40 features"):
            fitted.predict(da.from_array(dense[:, :30], chunks=(100, -1)))
        with pytest.raises(ValueError, match="expecting 40 features"):
            fitted.score(da.from_array(dense[:, :30], chunks=(100, -1)))
        with pytest.raises(ValueError, match="rows must lie"):
            fitted.predict_entries(da.from_array(dense, chunks=(100, -1)), [500], [0])
        assert fitted.predict(unknown).compute().shape[0] == (dense[:, 0] > 0).sum()
    with pytest.raises(fastem.NotFittedError):
        GaussianMixture(2).predict(da.from_array(dense, chunks=(100, -1)))
    with pytest.raises(ValueError, match="takes data in memory"):
        fastem.select_n_components(da.from_array(dense, chunks=(100, -1)), [2, 3])


def _frame(rows, cols, values):
    return dd.from_pandas(pd.DataFrame({"row": rows, "col": cols, "value": values}),
                          npartitions=2)


def test_bad_triples():
    gm = GaussianMixture(1)
    good = dict(rows=np.array([0, 1, 2, 3]), cols=np.array([0, 1, 0, 1]),
                values=np.array([1.0, 2.0, 3.0, 4.0]))
    with dask.config.set(scheduler="sync"):
        with pytest.raises(ValueError, match="no column 'user'"):
            from_triples(_frame(**good), row="user")
        with pytest.raises(ValueError, match="three different columns"):
            from_triples(_frame(**good), col="row")
        with pytest.raises(ValueError, match="integer indices"):
            gm.fit(_frame(good["rows"].astype(float), good["cols"], good["values"]))
        with pytest.raises(ValueError, match="negative indices"):
            gm.fit(_frame(np.array([0, -1, 2, 3]), good["cols"], good["values"]))
        with pytest.raises(ValueError, match="negative indices"):
            gm.fit(_frame(good["rows"], np.array([0, 1, -3, 1]), good["values"]))
        with pytest.raises(ValueError, match="appears more than once"):
            gm.fit(_frame(np.array([0, 1, 1, 3]), np.array([0, 1, 1, 1]), good["values"]))
        with pytest.raises(ValueError, match="'value' has 1 missing value"):
            gm.fit(_frame(good["rows"], good["cols"], np.array([1.0, np.nan, 3.0, 4.0])))
        with pytest.raises(ValueError, match="not finite"):
            gm.fit(_frame(good["rows"], good["cols"], np.array([1.0, np.inf, 3.0, 4.0])))
        with pytest.raises(TypeError, match="must hold numbers"):
            gm.fit(_frame(good["rows"], good["cols"], np.array(["1", "2", "3", "4"])))
        nullable = pd.array([0, None, 2, 3], dtype="Int64")
        with pytest.raises(ValueError, match="'row' has 1 missing value"):
            gm.fit(_frame(nullable, good["cols"], good["values"]))
        with pytest.raises(ValueError, match="index 3, but n_samples=3"):
            gm.fit(from_triples(_frame(**good), n_samples=3))
        with pytest.raises(ValueError, match="index 1, but n_features=1"):
            gm.fit(from_triples(_frame(**good), n_features=1))
        with pytest.raises(ValueError, match="n_samples must be None or an int"):
            from_triples(_frame(**good), n_samples=0)
        with pytest.raises(TypeError, match="dask.dataframe.DataFrame"):
            from_triples(pd.DataFrame({"row": [0], "col": [0], "value": [1.0]}))
        with pytest.raises(ValueError, match="no triple"):
            gm.fit(_frame(good["rows"][:0], good["cols"][:0], good["values"][:0]))
        empty = from_triples(_frame(good["rows"][:0], good["cols"][:0], good["values"][:0]),
                             n_samples=5, n_features=2)
        with pytest.raises(ValueError, match="no observed entry"):
            gm.fit(empty)
        assert isinstance(empty, Triples) and "n_samples=5" in repr(empty)
