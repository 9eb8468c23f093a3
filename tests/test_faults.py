"""Faults of production use, each in a process of its own with a timeout: a
regression fails instead of hanging the suite.

- fork after threaded work (GNU OpenMP's threads do not survive ``os.fork``):
  children fit, predict and fill on one thread; the parent keeps its threads;
- duplicate (row, column) entries: one rule everywhere (a ValueError naming
  how many and the first pair), never a silent sum.
"""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import scipy.sparse as sp

import fastem

TIMEOUT = 180  # seconds: far above what each case needs


def _run(code, backend):
    env = {**os.environ, "FASTEM_BACKEND": backend, "PYTHONWARNINGS": "ignore"}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=TIMEOUT, env=env)


_SETUP = """
    import os, warnings
    import numpy as np
    import fastem
    from fastem.datasets import make_ratings
    warnings.simplefilter("ignore")
    X = make_ratings(20000, 300, 400_000, random_state=0).to_csr()
    def fit():
        return fastem.GaussianMixture(3, random_state=0, n_threads=2, max_iter=4).fit(X)
    parent = fit()   # threaded work before the fork
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_child_forked_after_a_threaded_fit_fits_predicts_and_fills(backend):
    result = _run(_SETUP + """
    pid = os.fork()
    if pid == 0:
        model = fit()
        same = np.allclose(model.means_, parent.means_, rtol=1e-10)
        labels = model.predict(X[:50])
        filled = model.fill(X[:20])
        print("child", same, labels.shape[0], np.isfinite(filled).all(), flush=True)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    from fastem import _backend
    # The parent keeps its threads.
    kernels = _backend.get_backend()
    print("parent", status, _backend.effective_n_threads(2, kernels))
    """, backend)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.split("\n")
    assert "child True 50 True" in lines
    assert "parent 0 2" in lines


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_a_fork_pool_after_a_threaded_fit(backend):
    result = _run(_SETUP + """
    import multiprocessing
    def work(seed):
        model = fastem.GaussianMixture(3, random_state=seed, n_threads=2,
                                       max_iter=3).fit(X)
        return float(model.log_likelihood_)
    with multiprocessing.get_context("fork").Pool(2) as pool:
        values = pool.map(work, [0, 1, 2])
    print("pool", len(values), all(np.isfinite(values)))
    print("refit", fit().n_iter_)
    """, backend)
    assert result.returncode == 0, result.stderr
    assert "pool 3 True" in result.stdout
    assert "refit 4" in result.stdout


# ---------------------------------------------------------------------------
# duplicates: one rule in every entry point
# ---------------------------------------------------------------------------

def _two_fours():
    """A pair rated 4 twice: never a rating of 8."""
    return np.array([0, 0, 1, 2]), np.array([1, 1, 0, 2]), np.array([4.0, 4.0, 3.0, 2.0])


@pytest.mark.parametrize("form", ["coo", "csr", "recommender"])
def test_repeated_pairs_in_memory_are_refused(form):
    rows, cols, values = _two_fours()
    if form == "recommender":
        with pytest.raises(ValueError, match="more than once, the first at user index 0, "
                                             "item index 1"):
            fastem.Recommender().fit_triples(rows, cols, values)
        return
    X = sp.coo_matrix((values, (rows, cols)), shape=(3, 3))
    if form == "csr":
        X = sp.csr_matrix((values, cols, np.array([0, 2, 3, 4])), shape=(3, 3))
    with pytest.raises(ValueError, match=r"1 repeated entry, the first at \(0, 1\)"):
        fastem.GaussianMixture(1).fit(X)


def test_repeated_pairs_on_the_command_line(tmp_path):
    path = tmp_path / "ratings.csv"
    path.write_text("1,10,4\n1,10,4\n2,10,3\n2,20,2\n3,20,5\n")
    command = [sys.executable, "-m", "fastem", "fit", str(path), "-o",
               str(tmp_path / "m.npz"), "-q"]
    refused = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT,
                             cwd=tmp_path)
    assert refused.returncode == 1
    lines = refused.stderr.strip().splitlines()
    assert len(lines) == 1 and "the first at (1, 10)" in lines[0]
    assert "--duplicates last" in lines[0]
    assert not (tmp_path / "m.npz").exists()
    kept = subprocess.run(command + ["--duplicates", "last"], capture_output=True,
                          text=True, timeout=TIMEOUT, cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr
    assert "1 rating(s) repeat a (user, item) pair" in kept.stderr
    assert (tmp_path / "m.npz").exists()


def test_repeated_pairs_in_dask_triples():
    try:
        import dask
        import dask.dataframe as dd
        import pandas as pd
    except ImportError as exc:
        if os.environ.get("CI", "") == "true":
            pytest.fail(f"dask cannot be imported ({exc}) (CI=true: an error, not a skip)")
        pytest.skip(f"dask cannot be imported ({exc}); install fastem[dask]")
    rows, cols, values = _two_fours()
    frame = dd.from_pandas(pd.DataFrame({"row": rows, "col": cols, "value": values}),
                           npartitions=1)
    with dask.config.set(scheduler="sync"):
        with pytest.raises(ValueError, match=r"\(row=0, col=1\) appears more than once "
                                             r"\(1 repeated triple"):
            fastem.GaussianMixture(1).fit(frame)
