"""The initialisations keep their temporaries small: none is O(nnz).

On the compiled backend: the pure one's passes take O(nnz) temporaries.
"""

import os
import tracemalloc

import numpy as np
import pytest

from fastem import _init, _observed
from fastem._memory import InMemorySource
from fastem.datasets import make_ratings

try:
    from fastem import _kernels
except ImportError:  # the pure-only install; CI requires the extension
    _kernels = None


@pytest.mark.skipif(_kernels is None and os.environ.get("CI") != "true",
                    reason="compiled extension not built")

@pytest.mark.parametrize("method", ["k-means++", "random_from_data", "course"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_initialisation_memory_is_bounded_by_blocks_not_entries(method, dtype,
                                                                 monkeypatch):
    # Blocks of 2^14 entries (128 KB of float64): one temporary per observed
    # entry would take 8 MB here, twice the bound, which allows the O(n * K)
    # and O(K * d) buffers and a few blocks. Traced: NumPy's allocations.
    monkeypatch.setattr(_observed, "_BLOCK_ENTRIES", 1 << 14)
    data = make_ratings(5000, 2000, 1_000_000, random_state=0, dtype=dtype)
    bound = data.nnz * 8 // 2
    tracemalloc.start()
    try:
        params = _init.initial_params(InMemorySource(data, backend="cython"), 8, method,
                                      np.random.RandomState(0),
                                      covariance_type="spherical", min_variance=0.25)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert params.means.shape == (8, 2000)
    assert peak < bound, f"peak {peak / 1e6:.1f} MB above the bound {bound / 1e6:.1f} MB"
