"""The ``fastem`` command: fit, predict, recommend, evaluate, select, demo, bench.

Every error is one line on stderr, ``fastem: error: ...``, with exit status
1 (2 for a bad command line, 130 when interrupted), never a traceback.
Outputs are written to a temporary file in the destination folder, then
renamed to their name, so an interrupted run leaves no partial file; an
existing file is replaced only with ``--force``.

Modules
-------
``_main``
    :func:`main`: parse, run the command, report a failure in one line.
``_parser``
    The argument parser, its option groups and argument types.
``_cmd_fit``, ``_cmd_predict``, ``_cmd_recommend``, ``_cmd_evaluate``,
``_cmd_select``, ``_cmd_bench``
    The commands (``_cmd_evaluate`` runs evaluate and demo).
``_shared``
    The steps several commands share.
``_output``, ``_format``
    Output files, error messages and exit statuses; the layout of reports.
``_pairs``, ``_recommend``, ``_evaluate``, ``_bench``, ``_progress``
    What the commands compute and show: a mixture's predictions of (user,
    item) pairs in raw ids, a recommender's predictions and recommendations
    in raw ids, hold-out scores and baselines, the timing of one EM
    iteration, the progress of a fit.
"""

from ._main import main
from ._output import CommandError
from ._parser import build_parser

__all__ = ["main", "build_parser", "CommandError"]
