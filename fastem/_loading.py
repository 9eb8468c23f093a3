"""``fastem.load``: a model file read back as the estimator that wrote it."""

from . import _persist, recommender
from .mixture import model_from_content

__all__ = ["load"]


def _members_of(file_format):
    if file_format == _persist.FORMAT:
        return _persist.MEMBERS
    if file_format == recommender.FORMAT:
        return recommender.MEMBERS
    return None


def load(path):
    """Load a model written by ``GaussianMixture.save`` or ``Recommender.save``.

    The file holds plain arrays only and is read with ``allow_pickle=False``.

    Parameters
    ----------
    path : str, path-like or binary file object

    Returns
    -------
    GaussianMixture or Recommender
        Fitted, with its saved settings.

    Raises
    ------
    fastem.ModelFileError (a ValueError)
        If the file is not a fastem model file, is damaged, has inconsistent
        shapes, or was written in a newer format.
    """
    file_format, members = _persist.read_archive(path, _members_of)
    if file_format == recommender.FORMAT:
        return recommender.load_recommender(members)
    return model_from_content(_persist.validated_model(members))
