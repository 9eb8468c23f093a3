"""Choice of the kernel backend and of the number of threads, in one place.

``FASTEM_BACKEND=python`` forces the pure NumPy backend; ``FASTEM_BACKEND=cython``
requires the compiled one (ImportError if it is missing). By default the
compiled backend is used when it imports, else the pure one with a warning.
The compiled kernels come in a portable build and, on x86-64, a build for CPUs
with AVX2 and FMA, chosen at run time; ``FASTEM_SIMD=baseline`` forces the
portable one.

Fork: GNU OpenMP's thread pool does not survive ``os.fork``, and a threaded
kernel in a child forked after threaded work would wait forever for threads
that are not there. So a child forked after this process ran the compiled
kernels on more than one thread runs them on one (and says so once, with a
RuntimeWarning); the parent keeps its threads. Processes started with the
'spawn' or 'forkserver' method have their own threads.
"""

import os
import warnings

from . import _pure
from ._validation import MAX_THREADS, check_n_threads

__all__ = ["get_backend", "backend_info", "backend_name", "effective_n_threads",
           "threads_for", "ENTRIES_PER_THREAD"]

_ENV_VAR = "FASTEM_BACKEND"
# Observed entries below which one more thread does not pay: a pass over
# fewer costs well under a millisecond, less than waking and joining a thread
# (and far less than waiting for a core another process holds).
ENTRIES_PER_THREAD = 250_000
_default = None
# Whether this process has run compiled kernels on more than one thread, and
# whether it is a child forked after that (see the module docstring).
_threads_started = False
_forked_after_threads = False


def _after_fork_in_child():
    global _forked_after_threads, _warned_fork
    _forked_after_threads = _forked_after_threads or _threads_started
    _warned_fork = False


_warned_fork = False
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _compiled():
    """The compiled kernels, in their AVX2/FMA build where the CPU has it."""
    from . import _kernels

    if _kernels.cpu_has_avx2_fma() and os.environ.get("FASTEM_SIMD", "") != "baseline":
        try:
            from . import _kernels_avx2

            return _kernels_avx2
        except ImportError:
            pass
    return _kernels


def _default_backend():
    global _default
    if _default is not None:
        return _default
    choice = os.environ.get(_ENV_VAR, "").strip().lower()
    if choice == "python":
        _default = _pure
    elif choice == "cython":
        try:
            _default = _compiled()
        except (ImportError, OSError) as exc:
            raise ImportError(
                f"{_ENV_VAR}=cython but the compiled extension fastem._kernels "
                f"cannot be imported ({exc}); reinstall fastem with a C compiler"
            ) from exc
    elif choice in ("", "auto"):
        try:
            _default = _compiled()
        except (ImportError, OSError) as exc:
            warnings.warn(
                f"fastem's compiled extension is unavailable ({exc}); using the "
                "slower pure NumPy backend",
                RuntimeWarning,
                stacklevel=3,
            )
            _default = _pure
    else:
        raise ValueError(
            f"{_ENV_VAR} must be 'cython', 'python' or unset, got {choice!r}"
        )
    return _default


def get_backend(backend=None):
    """Return the kernel module for ``backend`` ('cython', 'python' or None)."""
    if backend is None:
        return _default_backend()
    if backend == "python":
        return _pure
    if backend == "cython":
        return _compiled()
    raise ValueError(f"backend must be 'cython', 'python' or None, got {backend!r}")


def backend_name(module):
    return "python" if module is _pure else "cython"


def _simd(module):
    if module is _pure:
        return "none"
    return "avx2" if module.__name__.endswith("_avx2") else "baseline"


def effective_n_threads(n_threads, module):
    """Resolve ``n_threads`` (None: the backend's default) to an int in [1, 1024].

    1 in a child forked after threaded work (see the module docstring).
    """
    global _threads_started, _warned_fork
    if n_threads is None:
        # OMP_NUM_THREADS may ask for more; beyond the bound it is not honoured.
        n_threads = min(max(1, int(module.max_threads())), MAX_THREADS)
    else:
        n_threads = check_n_threads(n_threads)
    if n_threads > 1 and module is not _pure and module.openmp_enabled:
        if _forked_after_threads:
            if not _warned_fork:
                _warned_fork = True
                warnings.warn(
                    "fastem runs its kernels on one thread in this process: it was "
                    "forked after threaded work, and OpenMP threads do not survive a "
                    "fork (start worker processes with the 'spawn' or 'forkserver' "
                    "method to keep them)", RuntimeWarning, stacklevel=3)
            return 1
        _threads_started = True
    return n_threads


def threads_for(n_entries, n_threads=None, backend=None):
    """Threads for passes over ``n_entries`` observed entries.

    ``n_threads`` given: that many. None: every core, but no more than one
    thread per ``ENTRIES_PER_THREAD`` entries (at least one).
    """
    module = get_backend(backend)
    if n_threads is not None:
        return effective_n_threads(n_threads, module)
    return min(effective_n_threads(None, module), max(1, n_entries // ENTRIES_PER_THREAD))


def backend_info(backend=None):
    """Describe the kernel backend in use.

    Parameters
    ----------
    backend : {None, 'cython', 'python'}, default=None
        The backend to describe; None describes the default one.

    Returns
    -------
    dict
        ``backend`` ('cython' or 'python'), ``openmp`` (bool: the kernels run
        threaded), ``max_threads`` (int: threads used when ``n_threads`` is
        None), ``simd`` ('avx2', 'baseline' or 'none': which build of the
        kernels runs) and ``build_flags`` (str: the extension's compiler flags).
    """
    module = get_backend(backend)
    return {
        "backend": backend_name(module),
        "openmp": bool(module.openmp_enabled),
        # What a pass would run on, without counting as threaded work.
        "max_threads": (1 if _forked_after_threads and module is not _pure
                        else min(max(1, int(module.max_threads())), MAX_THREADS)),
        "simd": _simd(module),
        "build_flags": getattr(module, "build_flags", ""),
    }
