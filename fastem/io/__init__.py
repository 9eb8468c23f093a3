"""Read rating matrices from files: dense text, rating triples, Matrix Market, npz.

Every loader returns a :class:`RatingData`: a CSR matrix whose **stored
entries are the observed ratings** (explicit zeros included; entries that are
not stored are missing) and the raw user and item ids of its rows and columns.
:func:`to_observed` hands the matrix to the estimators without densifying it.

Supported formats
-----------------
``dense``
    The course's files: one whitespace-separated row of numbers per user, with
    0 marking a missing rating (:func:`load_dense_text`).
``triples``
    One rating per line, ``user item rating [timestamp ...]``, separated by
    tabs (MovieLens ``u.data``), commas with or without a header
    (``ratings.csv``), ``::`` (MovieLens ``ratings.dat``), semicolons or
    whitespace (:func:`load_triples`).
``mtx``
    Matrix Market files, through :func:`scipy.io.mmread`.
``npz``
    Sparse matrices saved by :func:`scipy.sparse.save_npz`.

:func:`load` picks the loader from the file name (:data:`EXTENSIONS`).

Modules
-------
The rules of delimited text (delimiters, integer ids, numbers, decoding,
lines in messages) are ``fastem._text``, shared with the command line.

``_files``
    The checks made on a file before it is read.
``_ratings``
    :class:`RatingData`, its CSR assembly and :func:`to_observed`.
``_dense``, ``_triples`` (with ``_ids``, the numbering of ids), ``_matrix``
    The loaders.
``_formats``
    :func:`load`, :data:`FORMATS` and :data:`EXTENSIONS`.
"""

from ._dense import load_dense_text
from ._formats import EXTENSIONS, FORMATS, load
from ._matrix import load_matrix_market, load_npz
from ._ratings import DUPLICATES, RatingData, to_observed
from ._triples import load_triples

__all__ = [
    "RatingData",
    "to_observed",
    "load",
    "load_dense_text",
    "load_triples",
    "load_matrix_market",
    "load_npz",
    "FORMATS",
    "EXTENSIONS",
    "DUPLICATES",
]
