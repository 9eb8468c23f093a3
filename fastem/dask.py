"""fastem on Dask: read rating triples in a Dask DataFrame as a matrix.

Importing this module imports Dask (``pip install fastem[dask]``); importing
fastem does not. The estimator takes Dask arrays and DataFrames directly;
:func:`from_triples` names the columns of a DataFrame of triples and, if
needed, the shape of the matrix. See the README's section "Dask".
"""

from ._dask import Triples, from_triples

__all__ = ["Triples", "from_triples"]
