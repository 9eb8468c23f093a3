"""Choose the loader of a rating file from its format name or its extension."""

from types import MappingProxyType

from ._dense import load_dense_text
from ._files import existing_file
from ._matrix import load_matrix_market, load_npz
from ._ratings import check_duplicates_option
from .._text import UTF8_BOM
from ._triples import load_triples

__all__ = ["FORMATS", "EXTENSIONS", "load"]

#: Format names accepted by :func:`load`.
FORMATS = ("dense", "triples", "mtx", "npz")

#: The format of each extension :func:`load` knows (lower case); None: a
#: ``.txt`` file, dense or triples as its first line tells.
EXTENSIONS = MappingProxyType({
    ".csv": "triples",
    ".tsv": "triples",
    ".dat": "triples",
    ".data": "triples",
    ".mtx": "mtx",
    ".npz": "npz",
    ".txt": None,  # dense or triples, told apart by the first line
})

_LOADERS = {
    "dense": load_dense_text,
    "triples": load_triples,
    "mtx": load_matrix_market,
    "npz": load_npz,
}
_SNIFF_BYTES = 1 << 16


def load(path, format=None, *, duplicates="error", **kwargs):
    """Read a rating matrix, choosing the loader from the format or file name.

    Parameters
    ----------
    path : str or os.PathLike
        The file.
    format : {None, 'dense', 'triples', 'mtx', 'npz'}, default=None
        None: from the extension (case-insensitive). ``.csv``, ``.tsv``,
        ``.dat`` and ``.data`` are triples, ``.mtx`` is Matrix Market and
        ``.npz`` is scipy's sparse npz. A ``.txt`` file is dense when its first
        non-blank line has more than 4 whitespace-separated fields, and triples
        otherwise (so a dense matrix of at most 4 columns needs
        ``format='dense'``).
    duplicates : {'error', 'last'}, default='error'
        A (user, item) pair stored twice or more: refused, or its last rating
        kept with a warning (see :func:`load_triples`). Dense files cannot
        repeat a pair.
    **kwargs
        Passed to the loader: :func:`load_dense_text`, :func:`load_triples`,
        :func:`load_matrix_market` or :func:`load_npz`.

    Returns
    -------
    RatingData

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    IsADirectoryError
        If ``path`` is a folder.
    ValueError
        If the format is unknown or cannot be told from the name, or the file
        is empty or malformed.
    """
    path = existing_file(path)
    if format is None:
        suffix = path.suffix.lower()
        if suffix not in EXTENSIONS:
            raise ValueError(
                f"{path}: cannot tell the format from the extension "
                f"{suffix or '(none)'!r}; pass format= one of {FORMATS!r} "
                f"(extensions known: {', '.join(sorted(EXTENSIONS))})"
            )
        format = EXTENSIONS[suffix] or _sniff_txt(path)
    if format not in _LOADERS:
        raise ValueError(f"unknown format {format!r}; accepted: {FORMATS!r}")
    check_duplicates_option(duplicates)
    if format != "dense":
        kwargs["duplicates"] = duplicates
    return _LOADERS[format](path, **kwargs)


def _sniff_txt(path):
    with open(path, "rb") as f:
        head = f.read(_SNIFF_BYTES)
    line = _first_nonblank_line(head.removeprefix(UTF8_BOM))
    if line is None:
        raise ValueError(f"{path}: the file is empty")
    return "dense" if len(line.split()) > 4 else "triples"


def _first_nonblank_line(text):
    for line in text.split(b"\n"):
        if line.strip():
            return line
    return None
