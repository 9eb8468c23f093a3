"""The imputer: :class:`MixtureImputer`, a scikit-learn transformer.

It fits a :class:`~fastem.GaussianMixture` with its own settings and returns
the completed matrix (``GaussianMixture.fill``). Nothing here imports
scikit-learn, except ``__sklearn_tags__``, which scikit-learn itself calls.
"""

import sys

import numpy as np

from ._base import SettingsMixin
from ._exceptions import not_fitted_error
from ._input import as_source
from ._validation import Settings
from .mixture import GaussianMixture

__all__ = ["MixtureImputer"]

# Containers of transform's output, as scikit-learn's set_output names them.
OUTPUTS = ("default", "pandas", "polars")


class MixtureImputer(SettingsMixin):
    """Impute missing entries with their posterior mean under a Gaussian mixture.

    A scikit-learn transformer: :meth:`fit` fits a :class:`GaussianMixture`
    by exact EM on the observed entries (the missing ones are marginalised
    out, not filled first), and :meth:`transform` returns the completed dense
    matrix, each observed entry kept and each missing entry ``(u, i)``
    replaced by ``sum_j post[u, j] * means_[j, i]``, its expected value given
    the row's observed entries. Unlike filling with column means, a row's
    observed entries tell which cluster it belongs to, and so what its
    missing entries are likely to be.

    **Input** as for :class:`GaussianMixture`: a dense array where
    ``missing_values`` (NaN by default) marks the missing entries; a
    scipy.sparse matrix, whose **stored entries are the observed ones and
    every other entry is missing** (the convention of rating matrices, not
    scikit-learn's ``SimpleImputer``); a :class:`fastem.ObservedData`; or a
    Dask array chunked along rows (then ``transform`` returns a lazy Dask
    array).

    Parameters
    ----------
    n_components : int, default=4
        Number of mixture components K, at most the number of rows. 1 gives
        (nearly) the column means; choose K with
        :func:`fastem.select_n_components` or by cross-validation.
    covariance_type : {'spherical', 'diag'}, default='diag'
        'diag' (one variance per component and column) suits columns of
        different scales; 'spherical' is the model of rating matrices.
    min_variance : float, default=1e-6
        Floor of every variance after each M-step. The default is small, for
        data of any scale; :class:`GaussianMixture`'s 0.25 is the course's
        floor for ratings.
    tol, max_iter, n_init, init_params, mean_prior_strength, mean_prior, fixed_variance
        As in :class:`GaussianMixture`, with its defaults.
    missing_values : float or None, default=np.nan
        Marker of the missing entries of dense input (NaN matches NaN).
    weights_init, means_init, variances_init, random_state, warm_start
        As in :class:`GaussianMixture`.
    n_threads, backend, verbose
        As in :class:`GaussianMixture`.

    Attributes
    ----------
    mixture_ : GaussianMixture
        The fitted mixture (its ``means_``, ``predict_proba``, ``bic``, ...).
    n_iter_ : int
        EM iterations of the kept restart.
    n_features_in_ : int
        Number of columns seen by ``fit``.
    feature_names_in_ : ndarray of str
        Column names of a pandas DataFrame given to ``fit``, when all are
        strings.

    See Also
    --------
    GaussianMixture.fill : the same completion, from a fitted mixture.

    Notes
    -----
    A column with no observed entry in the training data cannot be imputed
    from it: ``fit`` raises a ValueError naming such columns, unless
    ``mean_prior_strength > 0``, which imputes them with ``mean_prior``.

    Examples
    --------
    >>> import numpy as np
    >>> from fastem import MixtureImputer
    >>> X = np.array([[1.0, 2.0, np.nan], [1.1, np.nan, 3.1], [np.nan, 2.1, 2.9],
    ...               [9.0, 8.0, np.nan], [9.1, np.nan, 7.0], [np.nan, 8.1, 7.1]])
    >>> filled = MixtureImputer(n_components=2, random_state=0).fit_transform(X)
    >>> np.round(filled[[0, 3], 2], 1)  # each row filled from its own cluster
    array([3. , 7.1])
    """

    def __init__(self, n_components=4, *, covariance_type="diag", tol=1e-6,
                 max_iter=1000, n_init=1, init_params="k-means++", min_variance=1e-6,
                 mean_prior_strength=0.0, mean_prior=0.0, fixed_variance=None,
                 missing_values=np.nan, weights_init=None, means_init=None,
                 variances_init=None, random_state=None, warm_start=False,
                 n_threads=None, backend=None, verbose=0):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.min_variance = min_variance
        self.mean_prior_strength = mean_prior_strength
        self.mean_prior = mean_prior
        self.fixed_variance = fixed_variance
        self.missing_values = missing_values
        self.weights_init = weights_init
        self.means_init = means_init
        self.variances_init = variances_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.n_threads = n_threads
        self.backend = backend
        self.verbose = verbose

    def __sklearn_is_fitted__(self):
        return hasattr(self, "mixture_")

    def __sklearn_tags__(self):
        # Called by scikit-learn only, so importing it here costs nothing otherwise.
        from sklearn.utils import InputTags, Tags, TargetTags, TransformerTags

        return Tags(
            estimator_type=None,
            target_tags=TargetTags(required=False),
            transformer_tags=TransformerTags(preserves_dtype=["float64", "float32"]),
            input_tags=InputTags(allow_nan=True, sparse=True),
        )

    def fit(self, X, y=None, *, progress=None):
        """Fit the mixture to the observed entries of ``X``.

        Parameters
        ----------
        X : {array-like, sparse matrix, ObservedData, Dask array}
            Of shape (n_samples, n_features), with missing entries.
        y : ignored
        progress : callable, optional
            As in :meth:`GaussianMixture.fit`.

        Returns
        -------
        self : MixtureImputer

        Raises
        ------
        ValueError
            As :meth:`GaussianMixture.fit`, and for a column with no observed
            entry when ``mean_prior_strength`` is 0.
        """
        params = self.get_params()
        if self.warm_start and self.__sklearn_is_fitted__():
            mixture = self.mixture_.set_params(**params)
        else:
            mixture = GaussianMixture(**params)
        # The source of X once, for the check and the fit (as GaussianMixture.fit).
        settings = Settings(params)
        source = as_source(X, missing_values=settings.missing_values,
                           backend=settings.backend, n_threads=settings.n_threads,
                           for_fit=True)
        if settings.mean_prior_strength == 0:
            empty = np.flatnonzero(np.asarray(source.column_counts()) == 0)
            if empty.size:
                raise ValueError(
                    f"{empty.size} column(s) of X have no observed entry (first: "
                    f"{empty[:5].tolist()}), so the data say nothing of their values; "
                    "drop them, or set mean_prior_strength > 0 to impute them with "
                    "mean_prior")
        mixture.fit(source, progress=progress)
        self.mixture_ = mixture
        self.n_iter_ = mixture.n_iter_
        self.n_features_in_ = mixture.n_features_in_
        names = getattr(X, "columns", None)
        if names is not None and all(isinstance(name, str) for name in names):
            self.feature_names_in_ = np.asarray(names, dtype=object)
        elif hasattr(self, "feature_names_in_"):
            del self.feature_names_in_
        return self

    def transform(self, X):
        """The completed matrix: observed entries kept, missing ones imputed.

        Parameters
        ----------
        X : {array-like, sparse matrix, ObservedData, Dask array}
            Of shape (n_samples, n_features).

        Returns
        -------
        X_filled : ndarray of shape (n_samples, n_features)
            Dense, float32 for float32 input, else float64; a lazy Dask array
            for Dask input; a data frame after ``set_output(transform=...)``.
        """
        if not self.__sklearn_is_fitted__():
            raise not_fitted_error(type(self).__name__, "transform")
        return self._container(self.mixture_.fill(X), X)

    def fit_transform(self, X, y=None, *, progress=None):
        """Fit to ``X``, then return ``X`` completed (see :meth:`transform`).

        Parameters
        ----------
        X : {array-like, sparse matrix, ObservedData, Dask array}
            Of shape (n_samples, n_features), with missing entries.
        y : ignored
        progress : callable, optional
            As in :meth:`GaussianMixture.fit`.

        Returns
        -------
        X_filled : ndarray of shape (n_samples, n_features)
        """
        return self.fit(X, progress=progress).transform(X)

    def set_output(self, *, transform=None):
        """Choose the container of the output of ``transform`` and ``fit_transform``.

        scikit-learn's protocol: ``Pipeline.set_output`` and
        ``sklearn.set_config(transform_output=...)`` reach the imputer too.

        Parameters
        ----------
        transform : {'default', 'pandas', 'polars'} or None, default=None
            'default': NumPy arrays (or the global setting of scikit-learn,
            when it is imported); 'pandas' or 'polars': a data frame with the
            columns of :meth:`get_feature_names_out` (and, for pandas, the
            index of a data frame given); None: unchanged.

        Returns
        -------
        self : MixtureImputer
        """
        if transform is None:
            return self
        if transform not in OUTPUTS:
            raise ValueError(f"set_output(transform={transform!r}) is not a container; "
                             f"use one of {OUTPUTS}")
        self._sklearn_output_config = {"transform": transform}
        return self

    def _container(self, filled, X):
        """``filled`` in the container chosen by :meth:`set_output`."""
        container = getattr(self, "_sklearn_output_config", {}).get("transform", "default")
        sklearn = sys.modules.get("sklearn")
        if container == "default" and sklearn is not None:
            container = sklearn.get_config().get("transform_output", "default")
        if container == "default":
            return filled
        if not isinstance(filled, np.ndarray):
            raise ValueError(f"set_output(transform={container!r}) needs input in memory; "
                             "Dask input gives a lazy Dask array")
        names = self.get_feature_names_out()
        if container == "pandas":
            import pandas as pd

            index = X.index if isinstance(X, pd.DataFrame) else None
            return pd.DataFrame(filled, columns=names, index=index, copy=False)
        import polars as pl

        return pl.DataFrame(filled, schema=list(names), orient="row")

    def get_feature_names_out(self, input_features=None):
        """Names of the output columns: those of the input.

        Parameters
        ----------
        input_features : array-like of str, optional
            The input's column names; default ``feature_names_in_`` when
            ``fit`` saw named columns, else ``x0, x1, ...``.

        Returns
        -------
        ndarray of str, of shape (n_features,)
        """
        if not self.__sklearn_is_fitted__():
            raise not_fitted_error(type(self).__name__, "get_feature_names_out")
        fitted = getattr(self, "feature_names_in_", None)
        if input_features is None:
            if fitted is not None:
                return fitted.copy()
            return np.asarray([f"x{i}" for i in range(self.n_features_in_)], dtype=object)
        names = np.asarray(input_features, dtype=object)
        if names.shape != (self.n_features_in_,):
            raise ValueError(f"input_features has {names.size} names, but X has "
                             f"{self.n_features_in_} features")
        if fitted is not None and not np.array_equal(names, fitted):
            raise ValueError("input_features differ from feature_names_in_, the column "
                             "names seen by fit")
        return names
