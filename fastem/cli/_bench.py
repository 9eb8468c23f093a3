"""Time one EM iteration on given data, per backend and thread count.

One iteration is one loop of the EM driver: the fused pass over the
observed entries (E-step and the M-step's sums), through the
:class:`~fastem._pass.PassBuffers` that own its arrays, and the M-step.
This is the quick, self-contained form of ``benchmarks/bench_kernels.py``
that ``fastem bench`` runs on synthetic ratings.
"""

import statistics
import time

import numpy as np

from .._backend import backend_name, effective_n_threads, get_backend
from .._em import mstep
from .._init import initial_params
from .._memory import InMemorySource
from .._pass import PassBuffers
from .._validation import check_params

__all__ = ["available_backends", "configurations", "bench_params", "time_iteration"]


def available_backends(names):
    """The backends of ``names`` that load, and why the others do not.

    Parameters
    ----------
    names : list of {'python', 'cython'}

    Returns
    -------
    found : list of str
    skipped : dict of str to str
        The reason for each backend left out.
    """
    found, skipped = [], {}
    for name in names:
        try:
            get_backend(name)
        except (ImportError, OSError) as exc:
            skipped[name] = f"the compiled extension does not import ({exc})"
            continue
        found.append(name)
    return found, skipped


def configurations(backends, threads):
    """(backend, n_threads) pairs to time: the pure backend is serial, so once.

    Parameters
    ----------
    backends : list of str
    threads : list of int or None
        None: the thread counts 1 and every core available.

    Returns
    -------
    list of (str, int)
    """
    pairs = []
    for backend in sorted(set(backends), key=lambda name: name != "python"):
        if backend == "python":
            pairs.append((backend, 1))
            continue
        counts = threads
        if counts is None:
            counts = sorted({1, effective_n_threads(None, get_backend(backend))})
        pairs.extend((backend, n) for n in counts)
    return pairs


def bench_params(data, n_components, covariance_type, seed):
    """Initial parameters to time with: K random rows, missing entries at column means.

    Parameters
    ----------
    data : ObservedData of shape (n_samples, n_features)
    n_components : int
    covariance_type : {'spherical', 'diag'}
    seed : int

    Returns
    -------
    Params
    """
    return initial_params(InMemorySource(data), n_components, "random_from_data",
                          np.random.RandomState(seed), covariance_type=covariance_type,
                          min_variance=0.25)


def time_iteration(data, params, backend, n_threads, repeats):
    """Median seconds of one EM iteration, after one untimed warm-up.

    Parameters
    ----------
    data : ObservedData of shape (n_samples, n_features)
    params : Params
    backend : {'python', 'cython'}
    n_threads : int
    repeats : int
        Timed iterations, at least 1.

    Returns
    -------
    seconds : float
    backend_used : str
        'python' or 'cython'.
    """
    params = check_params(params, data.n_features)
    buffers = PassBuffers(params.means.shape[0], data.n_features,
                          diag=params.variances.ndim == 2, backend=backend,
                          n_threads=n_threads)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        buffers.fused_pass(data, params)
        mstep(buffers.stats, params.means, params.variances, data.n_samples)
        times.append(time.perf_counter() - start)
    return statistics.median(times[1:]), backend_name(get_backend(backend))
