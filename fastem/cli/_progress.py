"""Progress of the command line's fits, on stderr.

On a terminal a single line is redrawn in place: a bar, the iteration, the
log-likelihood and its change (a mixture), or the steps done (a
recommender). Elsewhere (a log file, a pipe) plain lines are written
instead: one when a restart (or a recommender's part) ends, and one every
few seconds during a long one.
"""

import math
import shutil
import time

from ._format import count

__all__ = ["FitProgress", "RecommenderProgress", "StepProgress", "end_line"]

_BAR_WIDTH = 16
# Redraws on a terminal at most this often; more only costs time.
_REDRAW_SECONDS = 0.1
# Plain lines during a restart at most this often, so a log stays short.
_PLAIN_SECONDS = 5.0


def _is_terminal(stream):
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


class _Line:
    """One status line on ``stream``: redrawn in place on a terminal."""

    # The line last drawn and not yet ended, for end_line().
    unfinished = None

    def __init__(self, stream, interactive):
        self.stream = stream
        self.interactive = _is_terminal(stream) if interactive is None else interactive
        self.drawn = False

    def draw(self, text):
        width = shutil.get_terminal_size().columns - 1
        # Pad with spaces so a shorter line hides the end of the previous one.
        self.stream.write("\r" + text[:width].ljust(width))
        self.stream.flush()
        self.drawn = True
        _Line.unfinished = self

    def clear(self):
        if self.drawn:
            self.stream.write("\r" + " " * (shutil.get_terminal_size().columns - 1) + "\r")
            self.stream.flush()
            self.drawn = False
            _Line.unfinished = None

    def print(self, text):
        self.clear()
        self.stream.write(text + "\n")
        self.stream.flush()


def _bar(fraction):
    filled = int(round(_BAR_WIDTH * min(max(fraction, 0.0), 1.0)))
    return "[" + "#" * filled + "." * (_BAR_WIDTH - filled) + "]"


class FitProgress:
    """Shows the EM iterations of a :class:`~fastem.GaussianMixture` fit.

    Pass an instance as the ``progress`` argument of
    :meth:`~fastem.GaussianMixture.fit`: the estimator calls it at the start
    of each restart and calls what it returns after each EM iteration.

    The bar measures the way to convergence, not a share of ``max_iter``:
    EM stops when the relative change of the log-likelihood falls to
    ``tol``, so the bar is how far that change has come down, on a log
    scale, from the first change to ``tol``. It never moves backwards.

    Parameters
    ----------
    stream : file object
        Where to write (stderr).
    tol : float
        The estimator's ``tol``; 0 measures the bar by ``max_iter`` instead.
    max_iter : int
        The estimator's ``max_iter``.
    label : str, default=''
        Prefix of every line, e.g. ``'K = 4: '``.
    interactive : bool or None, default=None
        Redraw one line in place (a terminal) or write plain lines; None
        asks the stream.
    """

    def __init__(self, stream, *, tol, max_iter, label="", interactive=None):
        self.line = _Line(stream, interactive)
        self.tol = tol
        self.max_iter = max_iter
        self.label = label
        self.name = None

    def __call__(self, restart, n_restarts):
        """Start a restart (0-based; None for a warm start); return the callback."""
        self.close()
        if restart is None or n_restarts == 1:
            self.name = f"{self.label}EM"
        else:
            self.name = f"{self.label}restart {restart + 1}/{n_restarts}"
        self.start = self.end = self.last_draw = time.perf_counter()
        self.iteration = 0
        self.log_likelihood = self.change = math.nan
        self.first_change = None
        self.fraction = 0.0
        if self.line.interactive:
            self.line.draw(f"{self.name} {_bar(0.0)} initialising")
        return self._iteration

    def _iteration(self, iteration, log_likelihood):
        if self.iteration:
            self.change = (log_likelihood - self.log_likelihood) / max(
                abs(log_likelihood), 1e-300)
        self.iteration, self.log_likelihood = iteration, log_likelihood
        self.fraction = max(self.fraction, self._fraction())
        now = self.end = time.perf_counter()
        wait = _REDRAW_SECONDS if self.line.interactive else _PLAIN_SECONDS
        if now - self.last_draw < wait:
            return
        self.last_draw = now
        change = "-" if math.isnan(self.change) else f"{self.change:.1e}"
        if self.line.interactive:
            self.line.draw(f"{self.name} {_bar(self.fraction)} iter {iteration}, "
                           f"LL {log_likelihood:.9g}, change {change}, "
                           f"{now - self.start:.1f} s")
        else:
            self.line.print(f"{self.name}: iteration {iteration}, log-likelihood "
                            f"{log_likelihood:.10g}, relative change {change}")

    def _fraction(self):
        if self.tol <= 0 or self.iteration >= self.max_iter:
            return self.iteration / self.max_iter
        if not self.change > 0:  # the first iteration, or no increase: no news
            return 0.0 if self.first_change is None else self.fraction
        if self.first_change is None:
            self.first_change = self.change
        if self.change <= self.tol:
            return 1.0
        span = math.log(self.first_change / self.tol)
        return math.log(self.first_change / self.change) / span if span > 0 else 1.0

    def close(self):
        """End the current restart's display with a summary line."""
        if self.name is None:
            return
        seconds = self.end - self.start  # to the last iteration, not to now
        iterations = "iteration" if self.iteration == 1 else "iterations"
        self.line.print(f"{self.name}: {self.iteration} {iterations}, log-likelihood "
                        f"{self.log_likelihood:.10g}, {seconds:.2f} s")
        self.name = None


class RecommenderProgress:
    """Shows the steps of a :class:`~fastem.Recommender` fit.

    Pass an instance as the ``progress`` argument of
    :meth:`~fastem.Recommender.fit`, which calls it as
    ``progress(step, n_steps, label)`` after the offsets (label
    ``'offsets'``) and after each fit of a side (``'users 3'``: the users'
    mixture, restart 3). Create it just before the fit: its clock starts
    then.

    A summary line ends each part: the offsets, then each side's restarts.
    On a terminal a bar of the steps done is redrawn in between; elsewhere a
    plain line is written every few seconds during a long part.

    Parameters
    ----------
    stream : file object
        Where to write (stderr).
    n_restarts : int
        The estimator's ``n_restarts``.
    interactive : bool or None, default=None
        Redraw one line in place (a terminal) or write plain lines; None
        asks the stream.
    """

    _PARTS = {"offsets": "offsets", "users": "users' mixtures",
              "items": "items' mixtures"}

    def __init__(self, stream, *, n_restarts, interactive=None):
        self.line = _Line(stream, interactive)
        self.n_restarts = n_restarts
        self.start = self.part_start = self.last_line = time.perf_counter()
        if self.line.interactive:
            self.line.draw(f"recommender {_bar(0.0)} offsets")

    def __call__(self, step, n_steps, label):
        """Record that step ``step`` of ``n_steps`` (1-based), ``label``, has ended."""
        now = time.perf_counter()
        part, _, number = label.rpartition(" ")
        if not number.isdigit():
            part, number = label, ""
        name = self._PARTS.get(part, part)
        restart = int(number) if number else None
        if restart is None or restart >= self.n_restarts:
            restarts = "" if restart is None else f"{count(restart, 'restart')}, "
            self.line.print(f"recommender, {name}: {restarts}{now - self.part_start:.2f} s")
            self.part_start = self.last_line = now
        elif not self.line.interactive and now - self.last_line >= _PLAIN_SECONDS:
            self.line.print(f"recommender, {name}: restart {restart}/{self.n_restarts}, "
                            f"{now - self.part_start:.1f} s")
            self.last_line = now
        if self.line.interactive and step < n_steps:
            self.line.draw(f"recommender {_bar(step / n_steps)} step {step}/{n_steps} "
                           f"({label} done), {now - self.start:.1f} s")

    def close(self):
        """Clear the redrawn line, if one is left (the fit stopped early)."""
        self.line.clear()


class StepProgress:
    """A numbered sequence of steps: a redrawn line on a terminal, else nothing
    until each step's summary line.

    Parameters
    ----------
    stream : file object
    interactive : bool or None, default=None
    """

    def __init__(self, stream, interactive=None):
        self.line = _Line(stream, interactive)

    def start(self, text):
        """Show that a step has begun (on a terminal only)."""
        if self.line.interactive:
            self.line.draw(text + " ...")

    def done(self, text):
        """Print the summary line of a step."""
        self.line.print(text)


def end_line():
    """End a progress line left unfinished (before an error message, say)."""
    line = _Line.unfinished
    if line is not None and line.drawn:
        line.stream.write("\n")
        line.stream.flush()
        line.drawn = False
    _Line.unfinished = None
