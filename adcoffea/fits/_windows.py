"""Window enumeration, window sums and Poisson tail p-values for the BumpHunter.

Internal helpers of :mod:`adcoffea.fits.bumphunter`. Everything is 2D internally: a 1D
histogram of ``n`` bins is an ``(n, 1)`` array scanned with y-widths ``(1,)``.

Window order (this order defines "the first minimum" when p-values tie): widths ``wx``
ascending, then ``wy`` ascending, then position ``x`` ascending, then ``y`` ascending. This is
the order of pyBumpHunter 0.5.1 (1D and 2D), so ties resolve to the same bump.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import gammainc, gammaincc, gammaln, ndtri_exp, pdtr

#: p-values below this are recomputed in log space (gammainc is inaccurate in the
#: subnormal range and returns exactly 0 below ~1e-308).
_P_SMALL = 1e-290
#: scipy's gammainc(a, x) sums its power series for at most 2000 terms (cephes MAXITER) when
#: a > 200 and (a - x) / a >= 4.5 / sqrt(a); the series needs ~sqrt(73 a) terms, so for
#: a >~ 1e6 at Z >~ 4.5 it stops early and returns p too small (log p off by 5e-6 at 1e6,
#: 3e-2 at 1e7, 0.4 at 1e8 at Z = 5: an anti-conservative Z). Where the series would need
#: more than this many terms, the excess p-value is recomputed by :func:`_log_lower_series`.
_SCIPY_SERIES_TERMS = 1000


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


class CritCounter1D:
    """Counts 1D toys in which some window reaches its critical count.

    Works on toys laid out bins-first, shape (n_bins, T), so that every step is a whole-row
    vector operation over toys: the sums of all windows of width w are
    ``W_w = W_{w-1}[:-1] + counts[w-1:]`` (one add per width, no prefix-sum cumsum, which is
    slow along either axis in numpy), and a toy is hit when
    ``max over windows of (W - crit) >= 0`` (excess) or ``max (crit - W) >= 0`` (deficit).
    Windows that can never reach (critical count +/- 2**62) are left out.
    """

    def __init__(self, win: Windows, crit: np.ndarray, mode: str) -> None:
        if mode not in ("excess", "deficit"):  # pragma: no cover - validated by the caller
            raise ValueError(mode)
        self.mode = mode
        self.n_bins = int(win.shape[0])
        reach = np.abs(crit) < 2**61
        self.groups: list[tuple[int, slice, np.ndarray]] = []
        self.max_width = 0
        self.crit_max = 0
        self._by_width: dict[Any, dict[int, tuple[Any, np.ndarray]]] = {}
        for w in np.unique(win.wx[reach]):
            sel = reach & (win.wx == w)
            x0 = win.x0[sel]
            c = crit[sel]
            # positions of one width form a regular grid unless windows were left out
            d = np.diff(x0)
            if x0.size > 1 and np.all(d == d[0]):
                rows: slice | np.ndarray = slice(int(x0[0]), int(x0[-1]) + 1, int(d[0]))
            elif x0.size == 1:
                rows = slice(int(x0[0]), int(x0[0]) + 1)
            else:
                rows = x0
            self.groups.append((int(w), rows, c[:, None]))
            self.max_width = max(self.max_width, int(w))
            self.crit_max = max(self.crit_max, int(np.abs(c).max()))

    def count(self, counts: np.ndarray) -> int:
        """Number of toys (columns of ``counts``, shape (n_bins, T)) that reach."""
        if not self.groups:
            return 0
        counts = np.asarray(counts)
        # window sums are at most max_width * max count: int32 unless that could overflow
        big = self.crit_max >= 2**30 or self.max_width * int(counts.max(initial=0)) >= 2**30
        dt = np.int64 if big else np.int32
        c = counts.astype(dt, copy=False)
        by_width = self._by_width.get(dt)
        if by_width is None:
            by_width = {w: (rows, cc.astype(dt)) for w, rows, cc in self.groups}
            self._by_width[dt] = by_width
        best = np.full(c.shape[1], -1, dtype=dt)
        run = c
        for w in range(1, self.max_width + 1):
            if w > 1:
                run = run[:-1] + c[w - 1 :]
            if w not in by_width:
                continue
            rows, cc = by_width[w]
            m = run[rows] - cc if self.mode == "excess" else cc - run[rows]
            np.maximum(best, m.max(axis=0), out=best)
        return int(np.count_nonzero(best >= 0))


# ----------------------------------------------------------------------------------------
# Exact Poisson sampling by table inverse CDF
# ----------------------------------------------------------------------------------------

#: Bins with a larger mean are drawn with ``Generator.poisson`` (tables would be too long).
_LAM_TABLE_MAX = 2.0**22
#: guide cells M = 2**(ceil(log2 L) + this) for a table of L entries.
_GUIDE_EXTRA_BITS = 2


class PoissonTable:
    """Exact inverse-CDF Poisson sampler for a fixed vector of means.

    Per bin the Poisson CDF F(k) = ``pdtr(k, lam)`` is tabulated for k in
    [lam - 9 sqrt(lam) - 10, lam + 10 sqrt(lam) + 20] (mass outside < 1e-18, below the
    2**-53 resolution of float64 uniforms; the last entry is set to exactly 1). A count is the
    first k with F(k) > u, u = (r >> 11) * 2**-53 for a raw 64-bit output r of the bit
    generator (the uniform ``Generator.random`` would give). It is found with a guide table
    (Chen & Asau 1974) of M = 2**m cells: cell j = r >> (64 - m) = floor(u M) exactly. Cells
    holding no CDF value give the count directly (most draws: no float work at all); in the
    others the search starts at the first k with F(k) > j / M and steps up while F(k) <= u
    (bisection for the rare long steps in the tails). So the result is the exact inverse
    transform of u: no approximation beyond the double-precision CDF. Bins with mean above
    2**22 use ``Generator.poisson``.
    """

    def __init__(self, lam: np.ndarray) -> None:
        lam = np.asarray(lam, dtype=np.float64).ravel()
        self.lam = lam
        self.n_bins = lam.size
        self.dtype = np.int64 if lam.size and lam.max() > 1e9 else np.int32
        self.fallback = np.nonzero(lam > _LAM_TABLE_MAX)[0]
        self.tabled = np.nonzero(lam <= _LAM_TABLE_MAX)[0]
        lt = lam[self.tabled]
        sd = np.sqrt(lt)
        # Poisson mass below lo / above hi is < 1e-18 for every mean (checked in the tests)
        lo = np.maximum(0, np.floor(lt - 9.0 * sd - 10.0)).astype(np.int64)
        hi = np.ceil(lt + 10.0 * sd + 20.0).astype(np.int64)
        hi[lt == 0] = 0
        length = hi - lo + 1
        tab_off = np.concatenate(([0], np.cumsum(length))).astype(np.int64)[:-1]
        bin_of = np.repeat(np.arange(lt.size), length)
        k = (np.arange(length.sum()) - np.repeat(tab_off, length) + lo[bin_of]).astype(np.float64)
        cdf = pdtr(k, lt[bin_of])
        cdf[tab_off + length - 1] = 1.0
        self.cdf = cdf
        # M in [2L, 4L): few cells hold a CDF value, so few draws need the float search
        m = np.ceil(np.log2(np.maximum(length, 1))).astype(np.int64) + _GUIDE_EXTRA_BITS
        size = 2**m
        g_off = np.concatenate(([0], np.cumsum(size))).astype(np.int64)[:-1]
        # c_k = ceil(F(k) M) (exact: M is a power of two). The answer for u = j / M is
        # #{k: F(k) <= j / M} = #{k: c_k <= j}; cell j holds a CDF value (is impure) when
        # some c_k = j + 1 (conservative for F(k) = (j + 1) / M exactly, which is harmless).
        slot_off = g_off + np.arange(lt.size)  # M + 1 slots per bin
        c = np.ceil(cdf * size[bin_of]).astype(np.int64)
        cnt = np.bincount(slot_off[bin_of] + c, minlength=int(size.sum()) + lt.size)
        below = np.cumsum(cnt) - np.repeat(np.concatenate(([0], np.cumsum(length)))[:-1], size + 1)
        cell = np.arange(int(size.sum())) - np.repeat(g_off, size)
        bin_cell = np.repeat(np.arange(lt.size), size)
        slot = slot_off[bin_cell] + cell
        first = np.minimum(below[slot], length[bin_cell] - 1)
        impure = cnt[slot + 1] > 0
        # pure cell: the count itself (>= 0); else -(1 + table index to start from)
        guide = np.where(impure, -(tab_off[bin_cell] + first) - 1, lo[bin_cell] + first)
        if cdf.size >= 2**31 - 1 or (hi.size and hi.max() >= 2**31 - 1):
            self.guide = guide
        else:
            self.guide = guide.astype(np.int32)
        self.shift = (64 - m).astype(np.uint64)[:, None]
        self.g_off = g_off[:, None]
        self.base = tab_off - lo
        self.last = tab_off + length - 1

    def draw(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` toys of all bins, shape (n_bins, n), bins-first (draws bin-major)."""
        n = int(n)
        nt = self.tabled.size
        if nt:
            raw = rng.bit_generator.random_raw(nt * n).reshape(nt, n)
            j = (raw >> self.shift).view(np.int64)
            j += self.g_off
            g = self.guide[j]
            gf = g.ravel()
            idx = np.flatnonzero(gf < 0)
            if idx.size:
                gf[idx] = self._search(idx, -gf[idx].astype(np.int64) - 1, raw.ravel()[idx], n)
            if nt == self.n_bins:
                return g if g.dtype == self.dtype else g.astype(self.dtype)
        out = np.empty((self.n_bins, n), dtype=self.dtype)
        if nt:
            out[self.tabled] = g
        if self.fallback.size:
            out[self.fallback] = rng.poisson(
                self.lam[self.fallback][:, None], (self.fallback.size, n)
            )
        return out

    def _search(self, idx: np.ndarray, k: np.ndarray, raw: np.ndarray, n: int) -> np.ndarray:
        """Counts for draws in impure cells: first table index k with F(k) > u, from below."""
        u = (raw >> np.uint64(11)).astype(np.float64) * 2.0**-53
        cdf = self.cdf
        pos = np.arange(idx.size)
        for _ in range(3):  # most answers are within a step or two
            pos = pos[cdf[k[pos]] <= u[pos]]
            if not pos.size:
                break
            k[pos] += 1
        else:
            pos = pos[cdf[k[pos]] <= u[pos]]
        if pos.size:
            # long steps (a cell spanning a flat tail of F): bisect, keeping F(a) <= u < F(b);
            # the bin's last entry has F = 1 > u
            a, b, uu = k[pos], self.last[idx[pos] // n], u[pos]
            while True:
                act = b - a > 1
                if not act.any():
                    break
                mid = (a + b) // 2
                le = act & (cdf[mid] <= uu)
                a = np.where(le, mid, a)
                b = np.where(act & ~le, mid, b)
            k[pos] = b
        return k - self.base[idx // n]


_TABLES: OrderedDict[bytes, PoissonTable] = OrderedDict()


def poisson_table(lam: np.ndarray) -> PoissonTable:
    """Cached :class:`PoissonTable` for ``lam`` (repeated scans of one background reuse it)."""
    lam = np.ascontiguousarray(lam, dtype=np.float64).ravel()
    key = lam.tobytes()
    tab = _TABLES.get(key)
    if tab is None:
        tab = PoissonTable(lam)
        _TABLES[key] = tab
        if len(_TABLES) > 8:
            _TABLES.popitem(last=False)
    else:
        _TABLES.move_to_end(key)
    return tab


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
    out = _log_poisson_prefactor(a, x)
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


def _log_poisson_prefactor(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """log(x^a e^-x / Gamma(a + 1)) without the cancellation of its O(a ln a) terms.

    For a >= 100: a (log1p(s) - s) - ln(2 pi a) / 2 - S(a) with s = (x - a) / a and S the
    Stirling series of ln Gamma(a + 1) (truncation error < 1e-20): absolute error ~1e-16 |x - a|
    instead of ~1e-16 a ln a (1e-7 at a = 1e8).
    """
    a = np.asarray(a, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    out = np.empty(np.broadcast(a, x).shape)
    a, x = np.broadcast_arrays(a, x)
    big = a >= 100.0
    ab, xb = a[big], x[big]
    s = (xb - ab) / ab
    stirling = 1.0 / (12.0 * ab) - 1.0 / (360.0 * ab**3) + 1.0 / (1260.0 * ab**5)
    out[big] = ab * (np.log1p(s) - s) - 0.5 * np.log(2.0 * np.pi * ab) - stirling
    small = ~big
    out[small] = a[small] * np.log(x[small]) - x[small] - gammaln(a[small] + 1.0)
    return out


def _scipy_series_truncated(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Where scipy's gammainc(a, x) (x < a) would stop its power series before converging."""
    a = np.asarray(a, dtype=np.float64)
    x = np.asarray(x, dtype=np.float64)
    delta = a - x
    # terms until the n-th term ~ exp(-(delta n + n^2 / 2) / a) drops below 1e-16
    need = np.sqrt(delta * delta + 73.4 * np.maximum(a, 0.0)) - delta
    # scipy's uniform asymptotic branch (accurate) is used below 4.5 / sqrt(a); 4.0 keeps a margin
    a1 = np.maximum(a, 1.0)
    leaves_asymptotic = delta / a1 >= 4.0 / np.sqrt(a1)
    return (a > 200.0) & leaves_asymptotic & (need > _SCIPY_SERIES_TERMS)


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
    Accuracy: log p to ~1e-8 absolute or better for all counts (checked against mpmath up to
    b = 1e9 in the tests). scipy's gammainc alone loses accuracy for b >~ 1e6 at Z >~ 4.5
    (a truncated series); there the excess p is recomputed in log space.
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
    if mode == "excess":
        # scipy's series is truncated at large counts: recompute there (see _SCIPY_SERIES_TERMS)
        small |= sel & _scipy_series_truncated(d, b)
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
    b = np.asarray(b, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        # H = b [(1 + s) log1p(s) - s], s = (d - b) / b: absolute error ~1e-16 |d - b|, where
        # d ln(d/b) + b - d loses ~1e-16 (d + b) to cancellation (4e-7 at 1e9 counts)
        s = (d - b) / b
        h = np.where(d > 0, b * ((1.0 + s) * np.log1p(s) - s), b)
    return 2.0 * h


def _first_true(f, n: int, guess: np.ndarray, top: np.ndarray | None) -> np.ndarray:
    """Smallest x >= 0 with f(idx, x) true, f monotone in x (f(-1) counts as false).

    ``guess`` is a starting point (a close one saves evaluations); with ``top``, f(top) is
    known to be true. Each step evaluates f once on all still-open entries.
    """
    x = np.maximum(guess, 0) if top is None else np.clip(guess, 0, top)
    left = np.full(n, -2, dtype=np.int64)  # f(left) false (-1: sentinel), -2: unknown
    hi = np.full(n, -1, dtype=np.int64)  # f(hi) true, -1: unknown
    step = np.ones(n, dtype=np.int64)
    idx = np.arange(n)
    while idx.size:  # bracket by doubling steps away from the guess
        r = f(idx, x[idx])
        hi[idx[r]] = x[idx[r]]
        left[idx[~r]] = x[idx[~r]]
        up = left[idx] >= -1  # a false point is known: go up until true
        down = hi[idx] >= 0
        nxt = np.where(up, x[idx] + step[idx], x[idx] - step[idx])
        if top is not None:
            nxt = np.minimum(nxt, top[idx])
        done = up & down
        hit_bottom = ~up & (nxt < 0)
        left[idx[hit_bottom]] = -1
        done |= hit_bottom
        x[idx] = nxt
        step[idx] *= 2
        idx = idx[~done]
    while True:  # bisection: f(left) false, f(hi) true
        idx = np.nonzero(hi - left > 1)[0]
        if not idx.size:
            return hi
        mid = (left[idx] + hi[idx]) // 2
        r = f(idx, mid)
        hi[idx[r]] = mid[r]
        left[idx[~r]] = mid[~r]


def critical_counts(b: np.ndarray, t_obs: float, mode: str) -> np.ndarray:
    """Per window, the count from which the local p reaches exp(-t_obs).

    excess: smallest integer D with -log p(D, b) >= t_obs (p as in :func:`log_pvalues`);
    deficit: largest such D. A toy has t >= t_obs exactly when one of its window counts
    reaches its critical count, so the global p-value needs only integer comparisons.
    Windows that can never reach it get +/- 2**62. The search starts from a normal
    approximation with skewness correction and brackets/bisects with exact p-values, so
    the answer is exact and costs a handful of vectorised evaluations.
    """
    b = np.asarray(b, dtype=np.float64)
    never = np.int64(2**62) if mode == "excess" else np.int64(-(2**62))
    out = np.full(b.shape, never, dtype=np.int64)
    z = float(-ndtri_exp(-t_obs)) if t_obs > 0 else -np.inf
    z = max(z, 0.0)
    sel = np.nonzero(b > 0)[0]
    bb = b[sel]
    skew = (z * z - 1.0) / 6.0
    if mode == "excess":
        lo = np.floor(bb).astype(np.int64) + 1  # first count above b

        def f(i: np.ndarray, x: np.ndarray) -> np.ndarray:
            d = (lo[i] + x).astype(np.float64)
            return -log_pvalues(d, bb[i], mode)[1] >= t_obs

        guess = np.floor(bb + z * np.sqrt(bb) + skew + 0.5).astype(np.int64) - lo
        out[sel] = lo + _first_true(f, sel.size, guess, None)
    else:
        top = np.ceil(bb).astype(np.int64) - 1  # last count below b
        can = (-log_pvalues(np.zeros_like(bb), bb, mode)[1] >= t_obs) & (top >= 0)
        sel, bb, top = sel[can], bb[can], top[can]

        def f(i: np.ndarray, x: np.ndarray) -> np.ndarray:  # x = top - D
            d = (top[i] - x).astype(np.float64)
            return -log_pvalues(d, bb[i], mode)[1] >= t_obs

        guess = top - np.ceil(bb - z * np.sqrt(bb) + skew - 0.5).astype(np.int64)
        out[sel] = top - _first_true(f, sel.size, guess, top)
    return out
