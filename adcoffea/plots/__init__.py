"""Every figure adcoffea draws, one module per kind; each function returns a Figure.

=====================  ===========================================================
module                 figures
=====================  ===========================================================
:mod:`.fit`            background fit with its pulls
:mod:`.bumphunter`     BumpHunter 1D bump with local Z, 2D local-Z map, t distribution
:mod:`.limits`         Brazil plot (limits versus mass), 2D limit map
:mod:`.scores`         ROC and SIC curves, sculpting check, training loss curves
=====================  ===========================================================

Like ``hist``'s plotting, nothing here switches the matplotlib backend or changes the
global style: figures are :class:`matplotlib.figure.Figure` objects built without pyplot
(so nothing is left open in pyplot's registry), styled inside a style context, and the
caller saves them, e.g. with :func:`save`.

Example:
    >>> import tempfile
    >>> from pathlib import Path
    >>> from adcoffea.plots.limits import plot_brazil
    >>> fig = plot_brazil([1000.0, 2000.0], [5.0, 4.0], [[2, 3, 4, 6, 8], [1, 2, 3, 5, 7]])
    >>> with tempfile.TemporaryDirectory() as d:
    ...     save(fig, Path(d) / "plots" / "brazil.png").exists()
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["save"]


def save(fig: Figure, path: str | Path, **savefig_kwargs: Any) -> Path:
    """Save ``fig`` to ``path`` (its directory created); arguments go to ``savefig``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, **savefig_kwargs)
    return path
