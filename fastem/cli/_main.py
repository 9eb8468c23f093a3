"""Run a command line: parse it, call the command, turn every failure into one line."""

import os
import sys
import warnings

from . import (_cmd_bench, _cmd_evaluate, _cmd_fit, _cmd_predict, _cmd_recommend,
               _cmd_select)
from ._output import (EXIT_BROKEN_PIPE, EXIT_ERROR, EXIT_INTERRUPTED, EXIT_USAGE,
                      error_message, warn)
from ._parser import build_parser, parse_arguments
from ._progress import end_line

__all__ = ["main", "COMMANDS"]

#: The function that runs each command, given the parsed arguments.
COMMANDS = {
    "fit": _cmd_fit.run,
    "predict": _cmd_predict.run,
    "recommend": _cmd_recommend.run,
    "evaluate": _cmd_evaluate.run_evaluate,
    "select": _cmd_select.run,
    "demo": _cmd_evaluate.run_demo,
    "bench": _cmd_bench.run,
}


def _show_warning(message, category, filename, lineno, file=None, line=None):
    warn(str(message))


def main(argv=None):
    """Run the ``fastem`` command.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after the program name (default: ``sys.argv[1:]``).

    Returns
    -------
    int
        The exit status: 0 on success, 1 after an error, 2 for a bad command
        line, 130 when interrupted, 141 when stdout was closed early.
    """
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parse_arguments(parser, argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else EXIT_USAGE
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return COMMANDS[args.command](args)
        except BrokenPipeError:
            # The reader of stdout has gone (`fastem ... | head`): stop quietly,
            # and keep Python from failing again when it flushes stdout at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return EXIT_BROKEN_PIPE
        except KeyboardInterrupt:
            end_line()
            print("fastem: interrupted", file=sys.stderr)
            return EXIT_INTERRUPTED
        except Exception as exc:  # noqa: BLE001 - the user gets one line, never a traceback
            end_line()
            message = " ".join(error_message(exc).split())
            print(f"fastem: error: {message}", file=sys.stderr)
            return EXIT_ERROR
