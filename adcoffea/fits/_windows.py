"""Window enumeration, window sums and Poisson tail p-values for the BumpHunter.

Internal helpers of :mod:`adcoffea.fits.bumphunter`. Everything is 2D internally: a 1D
histogram of ``n`` bins is an ``(n, 1)`` array scanned with y-widths ``(1,)``.

Window order (this order defines "the first minimum" when p-values tie): widths ``wx``
ascending, then ``wy`` ascending, then position ``x`` ascending, then ``y`` ascending. This is
the order of pyBumpHunter 0.5.1 (1D and 2D), so ties resolve to the same bump.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import gammainc, gammaincc, gammaln

#: p-values below this are recomputed in log space (gammainc is inaccurate in the
#: subnormal range and returns exactly 0 below ~1e-308).
_P_SMALL = 1e-290


@dataclass(frozen=True)
class Windows:
    """All scan windows: arrays of length K in scan order (see module docstring)."""

    x0: np.ndarray
    wx: np.ndarray
    y0: np.ndarray
    wy: np.ndarray
    shape: tuple[int, int]

    @property
    def size(self) -> int:
        return int(self.x0.size)


def _step_for(step: int | str, width: int) -> int:
    if step == "full":
        return int(width)
    if step == "half":
        return max(1, int(width) // 2)
    return int(step)


def enumerate_windows(
    shape: tuple[int, int],
    lo: tuple[int, int],
    hi: tuple[int, int],
    widths_x: np.ndarray,
    widths_y: np.ndarray,
    steps: tuple[int | str, int | str],
) -> Windows:
    """Windows inside bins ``[lo, hi)`` per axis, in the documented scan order."""
    parts: list[tuple[np.ndarray, ...]] = []
    for wx in widths_x:
        px = np.arange(lo[0], hi[0] - wx + 1, _step_for(steps[0], wx))
        for wy in widths_y:
            py = np.arange(lo[1], hi[1] - wy + 1, _step_for(steps[1], wy))
            if px.size == 0 or py.size == 0:
                continue
            gx, gy = np.meshgrid(px, py, indexing="ij")
            n = gx.size
            parts.append(
                (gx.ravel(), np.full(n, wx), gy.ravel(), np.full(n, wy)),
            )
    if not parts:
        empty = np.zeros(0, dtype=np.int64)
        return Windows(empty, empty, empty, empty, shape)
    x0, wx, y0, wy = (np.concatenate([p[i] for p in parts]).astype(np.int64) for i in range(4))
    return Windows(x0, wx, y0, wy, shape)


def window_sums_direct(values: np.ndarray, win: Windows) -> np.ndarray:
    """Window sums of one 2D array, summed bin by bin (no prefix-sum cancellation).

    Prefix sums lose ~eps * total per window; background windows are summed directly so that
    their relative accuracy does not depend on the histogram's total.
    """
    values = np.asarray(values)
    out = np.zeros(win.size, dtype=np.result_type(values.dtype, np.float64))
    if win.size == 0:
        return out
    nx, ny = values.shape
    max_wx, max_wy = int(win.wx.max()), int(win.wy.max())
    # rows[w][x, y] = sum of values[x:x+w, y], built by adding one row at a time
    rows = np.zeros((nx, ny), dtype=out.dtype)
    row_sums: dict[int, np.ndarray] = {}
    for w in range(1, max_wx + 1):
        rows = rows[: nx - w + 1] + values[w - 1 :]
        row_sums[w] = rows
    for wx in np.unique(win.wx):
        base = row_sums[int(wx)]
        cols = np.zeros_like(base)
        for w in range(1, max_wy + 1):
            cols = cols[:, : ny - w + 1] + base[:, w - 1 :]
            sel = (win.wx == wx) & (win.wy == w)
            if sel.any():
                out[sel] = cols[win.x0[sel], win.y0[sel]]
    return out


class WindowSummer:
    """Window sums for a batch of integer histograms via summed-area tables.

    Windows of one (wx, wy) pair form a regular grid of positions, so their sums are four
    strided slices of the table (no gathers); results come out in the scan order.
    """

    def __init__(self, win: Windows) -> None:
        self.win = win
        self.groups: list[tuple[int, int, int, int, int, int, int, int, int, int]] = []
        if win.size == 0:
            return
        # consecutive runs of equal (wx, wy) are the width groups, positions a regular grid
        change = np.nonzero((np.diff(win.wx) != 0) | (np.diff(win.wy) != 0))[0] + 1
        starts = np.concatenate(([0], change))
        ends = np.concatenate((change, [win.size]))
        for a, b in zip(starts, ends, strict=True):
            xs, ys = np.unique(win.x0[a:b]), np.unique(win.y0[a:b])
            sx = int(xs[1] - xs[0]) if xs.size > 1 else 1
            sy = int(ys[1] - ys[0]) if ys.size > 1 else 1
            self.groups.append(
                (
                    int(a),
                    int(b),
                    int(win.wx[a]),
                    int(win.wy[a]),
                    int(xs[0]),
                    int(xs.size),
                    sx,
                    int(ys[0]),
                    int(ys.size),
                    sy,
                )
            )

    def table(self, batch: np.ndarray) -> np.ndarray:
        t, nx, ny = batch.shape
        big = batch.sum(axis=(1, 2)).max(initial=0) >= 2**31 - 1
        dtype = np.int64 if big else np.int32
        sat = np.zeros((t, nx + 1, ny + 1), dtype=dtype)
        np.cumsum(batch, axis=1, dtype=dtype, out=sat[:, 1:, 1:])
        np.cumsum(sat[:, 1:, 1:], axis=2, dtype=dtype, out=sat[:, 1:, 1:])
        return sat

    def blocks(self, sat: np.ndarray):
        """Yield (start, end, sums of shape (T, n_x, n_y)) per width group."""
        for a, b, wx, wy, x0, nx, sx, y0, ny, sy in self.groups:
            xa = slice(x0, x0 + (nx - 1) * sx + 1, sx)
            xb = slice(x0 + wx, x0 + wx + (nx - 1) * sx + 1, sx)
            ya = slice(y0, y0 + (ny - 1) * sy + 1, sy)
            yb = slice(y0 + wy, y0 + wy + (ny - 1) * sy + 1, sy)
            block = sat[:, xb, yb] - sat[:, xa, yb]
            block -= sat[:, xb, ya]
            block += sat[:, xa, ya]
            yield a, b, block

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """``batch`` has shape (T, nx, ny) of non-negative integers; returns (T, K)."""
        sat = self.table(batch)
        out = np.empty((batch.shape[0], self.win.size), dtype=sat.dtype)
        for a, b, block in self.blocks(sat):
            out[:, a:b] = block.reshape(block.shape[0], -1)
        return out

    def any_reaches(self, batch: np.ndarray, crit: np.ndarray, mode: str) -> np.ndarray:
        """Per toy: does any window sum reach its critical count (>= in excess, <= deficit)?"""
        sat = self.table(batch)
        hit = np.zeros(batch.shape[0], dtype=bool)
        for a, b, block in self.blocks(sat):
            c = crit[a:b].reshape(block.shape[1:])
            cmp = block >= c if mode == "excess" else block <= c
            hit |= cmp.reshape(cmp.shape[0], -1).any(axis=1)
        return hit


# ----------------------------------------------------------------------------------------
# Poisson tail probabilities
# ----------------------------------------------------------------------------------------


def _log_lower_series(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """log P(a, x) (regularised lower incomplete gamma) by its power series, for x < a + 1.

    P(a, x) = x^a e^-x / Gamma(a + 1) * sum_n x^n / ((a + 1) ... (a + n)); the sum is
    accumulated in log space in blocks so that it never overflows.
    """
    a = np.asarray(a, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    out = a * np.log(x) - x - gammaln(a + 1.0)
    log_sum = np.zeros_like(a)  # log of the partial sum (first term is 1)
    last = np.zeros_like(a)  # log of the last term included
    n0 = 0
    active = np.arange(a.size)
    block = 256
    while active.size:
        n = np.arange(n0 + 1, n0 + block + 1, dtype=np.float64)
        lx, aa = np.log(x[active])[:, None], a[active][:, None]
        terms = last[active][:, None] + np.cumsum(lx - np.log(aa + n), axis=1)
        m = np.maximum(log_sum[active], terms.max(axis=1))
        log_sum[active] = m + np.log(
            np.exp(log_sum[active] - m) + np.exp(terms - m[:, None]).sum(axis=1)
        )
        last[active] = terms[:, -1]
        n0 += block
        keep = last[active] > log_sum[active] - 40.0  # next terms still above 4e-18 relative
        active = active[keep]
    return out + log_sum


def _log_upper_cf(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """log Q(a, x) (regularised upper incomplete gamma) by Lentz's continued fraction, x > a - 1."""
    a = np.asarray(a, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    tiny = 1e-300
    b = x + 1.0 - a
    c = np.full_like(a, 1.0 / tiny)
    d = 1.0 / b
    h = d.copy()
    active = np.arange(a.size)
    i = 0
    while active.size and i < 10_000_000:
        i += 1
        an = -i * (i - a[active])
        b[active] += 2.0
        dd = an * d[active] + b[active]
        dd = np.where(np.abs(dd) < tiny, tiny, dd)
        cc = b[active] + an / c[active]
        cc = np.where(np.abs(cc) < tiny, tiny, cc)
        dd = 1.0 / dd
        delta = dd * cc
        d[active], c[active] = dd, cc
        h[active] *= delta
        active = active[np.abs(delta - 1.0) > 1e-16]
    return -x + a * np.log(x) - gammaln(a) + np.log(h)


def log_pvalues(d: np.ndarray, b: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Local p-values and their logs for counts ``d`` against expectations ``b``.

    excess: p = P(N >= d | b) = gammainc(d, b) where d > b and b > 0, else 1.
    deficit: p = P(N <= d | b) = gammaincc(d + 1, b) where d < b, else 1.
    Windows with b = 0 get p = 1: nothing is predicted there, so a Poisson p-value is
    undefined (any count would be infinitely significant); this is the reference
    implementations' convention. Where p < 1e-290 the log is recomputed from a series
    (excess) or continued fraction (deficit), so t = -log p stays finite for huge bumps.

    Returns:
        ``(p, log_p)`` with the broadcast shape of the inputs (p may underflow to 0; log_p
        never does).
    """
    d = np.asarray(d, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    d, b = np.broadcast_arrays(d, b)
    p = np.ones(d.shape)
    logp = np.zeros(d.shape)
    if mode == "excess":
        sel = (d > b) & (b > 0)
        p[sel] = gammainc(d[sel], b[sel])
    elif mode == "deficit":
        sel = d < b
        # gammaincc, not 1 - gammainc, keeps deficits below 1e-16 accurate
        p[sel] = gammaincc(d[sel] + 1.0, b[sel])
    else:  # pragma: no cover - validated by the caller
        raise ValueError(mode)
    small = sel & (p < _P_SMALL)
    ok = sel & ~small
    logp[ok] = np.log(p[ok])
    if small.any():
        if mode == "excess":
            logp[small] = _log_lower_series(d[small], b[small])
        else:
            logp[small] = _log_upper_cf(d[small] + 1.0, b[small])
        p[small] = np.exp(logp[small])
    return p, logp


def z_upper_sq(d: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2 H(d, b) = 2 (d ln(d/b) + b - d), the square of an upper bound on the local Z.

    For integer d and the one-sided Poisson tails used here (Short 2013, Poisson case of
    the Zubkov-Serov bound): P(N >= d) > Phi_bar(sqrt(2H(d, b))) for d > b, and
    P(N <= d) > Phi(-sqrt(2H(d, b))) for d < b. So a window whose 2H is below z^2 cannot
    have a local Z above z; the scan uses this to skip gammainc for hopeless windows. The
    bound is checked numerically against exact tails in the tests.
    """
    d = np.asarray(d, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = np.where(d > 0, d * np.log(d / b), 0.0) + b - d
    return 2.0 * h


def critical_counts(b: np.ndarray, t_obs: float, mode: str) -> np.ndarray:
    """Per window, the count from which the local p reaches exp(-t_obs).

    excess: smallest integer D with -log p(D, b) >= t_obs (p as in :func:`log_pvalues`);
    deficit: largest such D. A toy has t >= t_obs exactly when one of its window counts
    reaches its critical count, so the global p-value needs only integer comparisons.
    Windows that can never reach it get +/- 2**62.
    """
    b = np.asarray(b, dtype=np.float64)
    never = np.int64(2**62) if mode == "excess" else np.int64(-(2**62))
    out = np.full(b.shape, never, dtype=np.int64)

    def reach(d: np.ndarray, bb: np.ndarray) -> np.ndarray:
        return -log_pvalues(d.astype(np.float64), bb, mode)[1] >= t_obs

    if mode == "excess":
        sel = np.nonzero(b > 0)[0]
        lo = np.floor(b[sel]).astype(np.int64) + 1  # first count above b
        bb = b[sel]
        step = np.maximum(1, np.ceil(np.sqrt(bb))).astype(np.int64)
        hi = lo.copy()
        ok = reach(hi, bb)
        while not ok.all():  # exponential search for a count that reaches
            idx = ~ok
            hi[idx] = hi[idx] + step[idx]
            step[idx] *= 2
            ok[idx] = reach(hi[idx], bb[idx])
        # bisection: reach(hi) true, answer in (lo - 1, hi]
        left = lo - 1
        while True:
            act = hi - left > 1
            if not act.any():
                break
            mid = (left + hi) // 2
            r = np.ones_like(act)
            r[act] = reach(mid[act], bb[act])
            hi = np.where(act & r, mid, hi)
            left = np.where(act & ~r, mid, left)
        out[sel] = hi
    else:
        sel = np.nonzero(b > 0)[0]
        bb = b[sel]
        top = np.ceil(bb).astype(np.int64) - 1  # last count below b
        can = reach(np.zeros_like(top), bb) & (top >= 0)
        sel, bb, top = sel[can], bb[can], top[can]
        lo = np.zeros_like(top)  # reach(lo) true
        right = top + 1  # answer in [lo, right)
        while True:
            act = right - lo > 1
            if not act.any():
                break
            mid = (lo + right) // 2
            r = np.zeros_like(act)
            r[act] = reach(mid[act], bb[act])
            lo = np.where(act & r, mid, lo)
            right = np.where(act & ~r, mid, right)
        out[sel] = lo
    return out
