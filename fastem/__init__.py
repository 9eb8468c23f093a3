"""fastem: fast, exact EM for Gaussian mixtures on partially observed data.

The layers, each importing only those below it:

1. data and kernels: ``_validation`` (every rule), ``_observed`` (the
   observed entries, :class:`ObservedData`), ``_backend`` with ``_kernels``
   (compiled) and ``_pure``, ``_pass`` (one pass and its buffers);
2. the EM driver (``_em``), the interface to where the data live
   (``_source``) and what predictions compute (``_predictions``);
3. the initialisations (``_init``);
4. the data sources: in memory (``_memory``), on Dask (``fastem.dask``), and
   ``_input``, which turns any input into one;
5. the estimators: :class:`GaussianMixture` (``mixture``),
   :class:`Recommender` (``recommender``), the course's modules
   (``fastem.course``), model files (``_persist``, ``_loading``);
6. model selection (``_selection``), rating files (``fastem.io``),
   synthetic data (``fastem.datasets``);
7. the command line (``fastem.cli``).
"""

from ._version import __version__
from ._backend import backend_info
from ._exceptions import (ConvergenceWarning, DuplicateRatingsWarning, ModelFileError,
                          NotFittedError)
from ._observed import ObservedData, as_observed
from .mixture import GaussianMixture
from .recommender import Recommender
from .imputer import MixtureImputer
from ._loading import load
from ._selection import select_n_components

__all__ = [
    "GaussianMixture",
    "Recommender",
    "MixtureImputer",
    "load",
    "select_n_components",
    "ObservedData",
    "as_observed",
    "ConvergenceWarning",
    "DuplicateRatingsWarning",
    "NotFittedError",
    "ModelFileError",
    "backend_info",
    "__version__",
]
