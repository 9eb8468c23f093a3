"""fastem on Dask: matrices held in row blocks by Dask workers.

Importing this package imports Dask (``pip install fastem[dask]``); importing
fastem does not. The estimators take Dask arrays and DataFrames directly;
:func:`from_triples` names the columns of a DataFrame of triples and, if
needed, the shape of the matrix. See the user guide's page "Dask".

Modules: ``_scheduler`` (broadcasts, computations and reductions on the active
scheduler), ``_input`` (Dask arrays and triples as lazy row blocks) and
``_source`` (:class:`DaskSource`, the data source of those blocks).
"""

from ._input import Triples, from_triples
from ._source import DaskSource, as_source

__all__ = ["Triples", "from_triples", "DaskSource", "as_source"]
