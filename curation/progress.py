"""One shape of progress callback for every long step: ``progress(fraction, message)``.

``fraction`` runs from 0 to 1 (a step ends with 1.0); ``message`` says what is happening, in
words a person can read ("embedding texts", "importing rows"). Pages pass a function that moves
``st.progress``; the command lines a tqdm bar; tests a list's ``append`` through a lambda.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["Progress", "within"]

#: ``progress(fraction, message)``.
Progress = Callable[[float, str], None]


def within(progress: Progress | None, start: float, end: float,
           message: str | None = None) -> Progress | None:
    """A callback for a sub-step that maps its 0..1 onto ``start..end`` of ``progress``
    (with ``message`` instead of the sub-step's own, when given); None for None.

    >>> seen = []
    >>> step = within(lambda f, m: seen.append((round(f, 2), m)), 0.6, 1.0, "flagging")
    >>> step(0.5, "cleanlab"); seen
    [(0.8, 'flagging')]
    """
    if progress is None:
        return None

    def report(fraction: float, msg: str = "") -> None:
        progress(start + (end - start) * fraction, message if message is not None else msg)

    return report
