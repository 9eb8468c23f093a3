"""Model files: a fitted mixture in a NumPy ``.npz`` archive.

The archive holds plain arrays only and is read with ``allow_pickle=False``,
so opening a model file can never run code. Members:

================  ==========================  =====================================
member            dtype, shape                content
================  ==========================  =====================================
format            str, ()                     ``"fastem.GaussianMixture"``
format_version    int64, ()                   1 (this reader takes <= 1)
fastem_version    str, ()                     version of fastem that wrote the file
settings          str, ()                     JSON object: the estimator's settings
covariance_type   str, ()                     ``"spherical"`` or ``"diag"``
weights           float64, (K,)               mixing weights
means             float64, (K, d)             component means
variances         float64, (K,) or (K, d)     spherical or diagonal variances
fit_info          float64, (4,)               converged (0/1), n_iter,
                                              log_likelihood, lower_bound
row_labels        str or number, (m,)         optional
column_labels     str or number, (d,)         optional
weights_init,     float64                     optional: the settings of the same
means_init,                                   names, when given
variances_init
================  ==========================  =====================================
"""

import json
import math
import struct
import zipfile
import zlib

import numpy as np

from ._exceptions import ModelFileError
from ._validation import COVARIANCE_TYPES, Params, check_params

__all__ = ["FORMAT", "FORMAT_VERSION", "MEMBERS", "write_model", "write_members",
           "read_archive", "read_model", "validated_model", "labels_array"]

FORMAT = "fastem.GaussianMixture"
FORMAT_VERSION = 1
_REQUIRED = ("format", "format_version", "fastem_version", "settings",
             "covariance_type", "weights", "means", "variances", "fit_info")
_LABELS = ("row_labels", "column_labels")
INITIAL = ("weights_init", "means_init", "variances_init")
# Settings whose value may be an array: members of their own, not JSON.
ARRAY_SETTINGS = INITIAL + ("mean_prior",)


def labels_array(labels, name, length=None):
    """``labels`` as a 1-D array of str or numbers that needs no pickling.

    Raises
    ------
    ValueError
        If the labels are not 1-D, have the wrong length, or are neither
        strings nor numbers.
    """
    array = np.asarray(labels)
    if array.dtype == object:
        if not all(isinstance(item, str) for item in array.ravel()):
            raise ValueError(f"{name} must be strings or numbers")
        array = array.astype(str)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.dtype.kind not in "biufU":
        raise ValueError(f"{name} must be strings or numbers, got dtype {array.dtype}")
    if length is not None and array.shape[0] != length:
        raise ValueError(f"{name} must have {length} entries, got {array.shape[0]}")
    return array


def write_model(file, *, settings, weights, means, variances, fit_info, fastem_version,
                row_labels=None, column_labels=None, initial=None):
    """Write a model archive to ``file`` (a path or a binary file object).

    ``settings`` is a dict of JSON values; ``initial`` maps names in
    ``ARRAY_SETTINGS`` to arrays. A path gets no ``.npz`` suffix added: the file is
    written where named.
    """
    members = {
        "format": np.array(FORMAT),
        "format_version": np.array(FORMAT_VERSION, dtype=np.int64),
        "fastem_version": np.array(str(fastem_version)),
        "settings": np.array(json.dumps(settings, sort_keys=True)),
        "covariance_type": np.array(settings["covariance_type"]),
        "weights": np.asarray(weights, dtype=np.float64),
        "means": np.asarray(means, dtype=np.float64),
        "variances": np.asarray(variances, dtype=np.float64),
        "fit_info": np.asarray(fit_info, dtype=np.float64),
    }
    for name, value in (initial or {}).items():
        members[name] = np.asarray(value, dtype=np.float64)
    if row_labels is not None:
        members["row_labels"] = labels_array(row_labels, "row_labels")
    if column_labels is not None:
        members["column_labels"] = labels_array(column_labels, "column_labels",
                                                members["means"].shape[1])
    write_members(file, members)


def write_members(file, members):
    """Write plain arrays as a compressed ``.npz`` archive, at the name given."""
    if isinstance(file, (str, bytes)) or hasattr(file, "__fspath__"):
        # np.savez would append ".npz" to a path; an open file keeps its name.
        with open(file, "wb") as handle:
            np.savez_compressed(handle, **members)
    else:
        np.savez_compressed(file, **members)


def read_archive(file, names_of):
    """The format and the members of a fastem archive, read without pickle.

    Parameters
    ----------
    file : str, path-like or binary file object
    names_of : callable
        ``names_of(format)`` gives the names of the members to read for a
        file of that format (the others are not read), or None to refuse it.

    Returns
    -------
    format : str
    members : dict of str to ndarray

    Raises
    ------
    ModelFileError
        If the file is not a fastem archive or cannot be read.
    """
    try:
        archive = np.load(file, allow_pickle=False)
        if not hasattr(archive, "files"):
            raise ModelFileError(f"{file!r} holds a single .npy array, not a model file")
        with archive:
            if "format" not in archive.files:
                raise ModelFileError(f"{file!r} is not a fastem model file: it lacks "
                                     "['format']")
            file_format = _scalar_str({"format": archive["format"]}, "format")
            names = names_of(file_format)
            if names is None:
                raise ModelFileError(
                    f"not a fastem model file (format {file_format!r})")
            members = {name: archive[name] for name in archive.files if name in names}
    except (ModelFileError, FileNotFoundError):
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError, zlib.error,
            struct.error, NotImplementedError, RuntimeError, OverflowError,
            MemoryError) as exc:
        # A damaged or crafted archive fails in zipfile, zlib or NumPy's .npy
        # reader in many ways (an unsupported compression or zip version, an
        # "encrypted" member, a header announcing a huge array, ...).
        raise ModelFileError(
            f"cannot read {file!r} as a fastem model file ({type(exc).__name__}: "
            f"{exc})") from exc
    return file_format, members


MEMBERS = _REQUIRED + _LABELS + ARRAY_SETTINGS


def read_model(file):
    """Read and validate a model archive.

    Returns
    -------
    dict
        ``settings`` (dict), ``fastem_version`` (str), ``weights``, ``means``,
        ``variances`` (float64 arrays), ``fit_info`` (dict), ``row_labels``
        and ``column_labels`` (arrays or None), ``initial`` (dict of the
        arrays of ``ARRAY_SETTINGS`` present).

    Raises
    ------
    ModelFileError
        If the file is not a fastem model archive, is damaged, was written by
        a newer format version, or holds inconsistent arrays.
    """
    _, members = read_archive(file, lambda file_format: MEMBERS)
    return validated_model(members)



def _scalar_str(members, name):
    value = members[name]
    if value.shape != () or value.dtype.kind != "U":
        raise ModelFileError(f"model file member {name!r} must be a string")
    return str(value)


def validated_model(members):
    """The content of a GaussianMixture file from its members (see :func:`read_model`)."""
    missing = [name for name in _REQUIRED if name not in members]
    if missing:
        raise ModelFileError(f"not a fastem model file: it lacks {missing}")
    if _scalar_str(members, "format") != FORMAT:
        raise ModelFileError(
            f"not a fastem model file (format {str(members['format'])!r})")
    version = members["format_version"]
    if version.shape != () or version.dtype.kind not in "iu":
        raise ModelFileError("model file member 'format_version' must be an integer")
    if int(version) > FORMAT_VERSION or int(version) < 1:
        raise ModelFileError(
            f"model file format version {int(version)} is not supported by this "
            f"fastem (it reads versions up to {FORMAT_VERSION}); upgrade fastem")
    try:
        settings = json.loads(_scalar_str(members, "settings"))
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"model file settings are not valid JSON ({exc})") from exc
    if not isinstance(settings, dict):
        raise ModelFileError("model file settings must be a JSON object")
    covariance_type = _scalar_str(members, "covariance_type")
    if covariance_type not in COVARIANCE_TYPES:
        raise ModelFileError(f"unknown covariance_type {covariance_type!r} in model file")
    arrays = {}
    for name in ("weights", "means", "variances", "fit_info"):
        array = members[name]
        if array.dtype.kind != "f":
            raise ModelFileError(f"model file member {name!r} must hold floats")
        arrays[name] = array.astype(np.float64)
    try:
        means, variances, weights = check_params(
            Params(arrays["means"], arrays["variances"], arrays["weights"]),
            covariance_type=covariance_type)
    except ValueError as exc:
        raise ModelFileError(f"invalid parameters in model file: {exc}") from None
    n_features = means.shape[1]
    fit_info = arrays["fit_info"]
    if fit_info.shape != (4,):
        raise ModelFileError(f"fit_info must have shape (4,), got {fit_info.shape}")
    converged, n_iter = fit_info[0], fit_info[1]
    if (converged not in (0.0, 1.0) or not math.isfinite(n_iter) or n_iter < 0
            or n_iter != int(n_iter) or np.isnan(fit_info[2:]).any()):
        raise ModelFileError(
            "model file member 'fit_info' is invalid: it must hold converged (0 or 1), "
            "n_iter (an integer >= 0), log_likelihood and lower_bound")
    labels = {}
    for name in _LABELS:
        if name not in members:
            labels[name] = None
            continue
        try:
            labels[name] = labels_array(members[name], name,
                                        n_features if name == "column_labels" else None)
        except ValueError as exc:
            raise ModelFileError(f"invalid {name} in model file: {exc}") from exc
    initial = {}
    initial_shapes = {"weights_init": weights.shape, "means_init": means.shape,
                      "variances_init": variances.shape, "mean_prior": (n_features,)}
    for name in ARRAY_SETTINGS:
        if name in members:
            if members[name].dtype.kind != "f" or not np.isfinite(members[name]).all():
                raise ModelFileError(f"model file member {name!r} must hold finite floats")
            if members[name].shape != initial_shapes[name]:
                raise ModelFileError(
                    f"model file member {name!r} has shape {members[name].shape}, but "
                    f"the model needs {initial_shapes[name]}")
            initial[name] = members[name].astype(np.float64)
    return {
        "settings": settings,
        "initial": initial,
        "fastem_version": _scalar_str(members, "fastem_version"),
        "covariance_type": covariance_type,
        "weights": weights,
        "means": means,
        "variances": variances,
        "fit_info": {"converged": bool(fit_info[0]), "n_iter": int(fit_info[1]),
                     "log_likelihood": float(fit_info[2]),
                     "lower_bound": float(fit_info[3])},
        **labels,
    }
