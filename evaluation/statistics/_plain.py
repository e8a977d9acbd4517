"""What a sweep's comparison asks of scipy.stats, statsmodels and scipy.optimize, computed
from scipy.special and numpy alone.

scipy.stats (statsmodels imports it) and scipy.optimize hold ~70 MiB of a process's
memory beside scipy.special's ~15: in a 100,000-generation run that was the difference
between the process tree's peak and its 600 MB goal (issue 46). Each function here takes
the steps of the scipy.stats, statsmodels or scipy.optimize function it names, with the
same scipy.special functions (the ones scipy.stats' distributions call) and the same
numpy operations in the same order, so its numbers are those of the library, bit for bit
(tests/evaluation/statistics/test_plain.py compares them on many inputs). The paths not
copied here (Wilcoxon on 50 differences or fewer: exact and permutation distributions)
call scipy.stats itself; small samples are not where memory matters.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import permutations, product

import numpy as np
from scipy import special
from scipy.special import _ufuncs

EPS = float(np.finfo(float).eps)
WILCOXON_EXACT_UP_TO = 50  # scipy.stats.wilcoxon's method="auto": exact or permutation


# --- distributions (as scipy.stats' norm, t, nct and binom compute them) ------------------


def norm_ppf(q):
    return special.ndtri(q)


def norm_cdf(x):
    return special.ndtr(x)


def t_sf(x, df):
    return special.stdtr(df, -np.asarray(x))


def t_ppf(q, df):
    return special.stdtrit(df, q)


def nct_sf(x, df, nc):
    with np.errstate(over="ignore"):
        return np.clip(_ufuncs._nct_sf(x, df, nc), 0, 1)


def nct_cdf(x, df, nc):
    return special.nctdtr(df, nc, x)


def binom_pmf(k, n, p):
    """``stats.binom.pmf`` for k within [0, n]."""
    return np.clip(_ufuncs._binom_pmf(k, n, p), 0, 1)


def binom_cdf(k, n, p):
    """``stats.binom.cdf``: 1 at and above n, 0 below 0."""
    k, n = np.floor(np.asarray(k, dtype=float)), np.asarray(n, dtype=float)
    inside = (k >= 0) & (k < n)
    out = np.where(k >= n, 1.0, 0.0)
    if np.any(inside):
        kk, nn = np.broadcast_arrays(k, n)
        out = np.where(inside, np.clip(_ufuncs._binom_cdf(kk, nn, p), 0, 1), out)
    return out[()] if out.ndim == 0 else out


def binom_ppf(q, n, p):
    """``stats.binom.ppf`` for 0 < q < 1."""
    return _ufuncs._binom_ppf(q, n, p) + 0


# --- root finding (scipy.optimize.brentq, its C code step for step) ----------------------


def brentq(
    f: Callable[[float], float],
    a: float,
    b: float,
    xtol: float = 2e-12,
    rtol: float = 4 * EPS,
    maxiter: int = 100,
) -> float:
    """``scipy.optimize.brentq(f, a, b, xtol=xtol)``: Brent's method as scipy's
    ``brentq.c`` takes it. ValueError where f(a) and f(b) have one sign, RuntimeError
    where ``maxiter`` steps do not converge (as scipy raises)."""

    def value(x: float) -> float:
        fx = float(f(x))
        if math.isnan(fx):
            raise ValueError(f"The function value at x={x} is NaN; solver cannot continue.")
        return fx

    xpre, xcur = float(a), float(b)
    xblk = fblk = spre = scur = 0.0
    fpre, fcur = value(xpre), value(xcur)
    if fpre == 0:
        return xpre
    if fcur == 0:
        return xcur
    if math.copysign(1, fpre) == math.copysign(1, fcur):
        raise ValueError("f(a) and f(b) must have different signs")
    for _ in range(maxiter):
        if fpre != 0 and fcur != 0 and math.copysign(1, fpre) != math.copysign(1, fcur):
            xblk, fblk = xpre, fpre
            spre = scur = xcur - xpre
        if abs(fblk) < abs(fcur):
            xpre, xcur, xblk = xcur, xblk, xcur
            fpre, fcur, fblk = fcur, fblk, fcur
        delta = (xtol + rtol * abs(xcur)) / 2
        sbis = (xblk - xcur) / 2
        if fcur == 0 or abs(sbis) < delta:
            return xcur
        if abs(spre) > delta and abs(fcur) < abs(fpre):
            if xpre == xblk:  # interpolate
                stry = -fcur * (xcur - xpre) / (fcur - fpre)
            else:  # extrapolate
                dpre = (fpre - fcur) / (xpre - xcur)
                dblk = (fblk - fcur) / (xblk - xcur)
                stry = -fcur * (fblk * dblk - fpre * dpre) / (dblk * dpre * (fblk - fpre))
            if 2 * abs(stry) < min(abs(spre), 3 * abs(sbis) - delta):
                spre, scur = scur, stry  # good short step
            else:
                spre = scur = sbis  # bisect
        else:
            spre = scur = sbis  # bisect
        xpre, fpre = xcur, fcur
        xcur += scur if abs(scur) > delta else (delta if sbis > 0 else -delta)
        fcur = value(xcur)
    raise RuntimeError(f"brentq: failed to converge after {maxiter} iterations, value {xcur}")


# --- descriptive statistics ---------------------------------------------------------------


def rankdata(x: np.ndarray, return_ties: bool = False):
    """``stats.rankdata(x)`` (average ranks) of the last axis of an array without NaN;
    with ``return_ties``, also the tie counts at the sorted positions, as scipy's
    Wilcoxon uses them."""
    x = np.asarray(x)
    shape = x.shape
    j = np.argsort(x, axis=-1, stable=True)
    ordinal = np.broadcast_to(np.arange(1, shape[-1] + 1, dtype=float), shape)
    y = np.take_along_axis(x, j, axis=-1)
    i = np.concatenate([np.ones((*shape[:-1], 1), dtype=bool), y[..., :-1] != y[..., 1:]], -1)
    indices = np.arange(y.size)[i.reshape(-1)]
    counts = np.diff(indices, append=np.asarray([y.size], dtype=indices.dtype))
    ranks = ordinal[i] + (counts.astype(float) - 1) / 2
    ranks = np.repeat(ranks, counts).reshape(shape)
    ordered = np.empty(shape, dtype=ranks.dtype)
    np.put_along_axis(ordered, j, ranks, axis=-1)
    if not return_ties:
        return ordered
    t = np.zeros(shape, dtype=np.float64)
    t[i] = counts.astype(t.dtype)
    return ordered, t


def skew_unbiased(a: np.ndarray) -> float:
    """``stats.skew(a, bias=False)`` of a 1-D array (NaN where the variance is 0)."""
    a = np.asarray(a, dtype=float)
    n = a.shape[0]
    mean = np.mean(a, axis=0, keepdims=True)
    centred = a - mean
    m2 = np.mean(centred**2, axis=0)
    s = np.array(centred, copy=True)
    s = s**2
    s *= centred
    m3 = np.mean(s, axis=0)
    with np.errstate(all="ignore"):
        zero = m2 <= (EPS * mean[0]) ** 2
        value = np.nan if zero else m3 / m2**1.5
        if not zero and n > 2:
            value = ((n - 1.0) * n) ** 0.5 / (n - 2.0) * m3 / m2**1.5
    return float(value)


def pearson_r(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """``stats.pearsonr(x, y, axis=-1).statistic`` (rows whose x or y is constant: NaN,
    without scipy's warning)."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = x.shape[-1]
    const = np.all(x == x[..., 0:1], axis=-1) | np.all(y == y[..., 0:1], axis=-1)
    if np.any(const):
        x = np.where(np.all(x == x[..., 0:1], axis=-1)[..., np.newaxis], np.nan, x)
        y = np.where(np.all(y == y[..., 0:1], axis=-1)[..., np.newaxis], np.nan, y)
    xm = x - np.mean(x, axis=-1, keepdims=True)
    ym = y - np.mean(y, axis=-1, keepdims=True)
    xmax = np.max(np.abs(xm), axis=-1, keepdims=True)
    ymax = np.max(np.abs(ym), axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        normxm = xmax * np.linalg.norm(xm / xmax, ord=2, axis=-1, keepdims=True)
        normym = ymax * np.linalg.norm(ym / ymax, ord=2, axis=-1, keepdims=True)
        r = np.vecdot(xm / normxm, ym / normym, axis=-1)
    r = np.clip(r, -1.0, 1.0)
    r = np.where(const, np.nan, r)
    if n == 2:
        r = np.round(r)
    return r[()] if r.ndim == 0 else r


# --- tests ----------------------------------------------------------------------------------


def ttest_rel(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """``stats.ttest_rel(a, b)``: (t, two-sided p) of 1-D arrays."""
    d = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    n = d.shape[0]
    mean = np.mean(d, axis=0)
    centred = d - np.mean(d, axis=0, keepdims=True)
    v = np.mean(centred**2, axis=0)
    nf = np.asarray(n, dtype=d.dtype)
    v *= nf / (nf - 1)
    denom = np.sqrt(v / n)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.divide(mean, denom)
    p = 2 * special.stdtr(np.asarray(n - 1, dtype=t.dtype), -np.abs(t))
    return float(t), float(p)


def wilcoxon(d: np.ndarray, zero_method: str = "pratt") -> tuple[float, float]:
    """``stats.wilcoxon(d, zero_method=zero_method)``: (statistic, two-sided p). Above
    :data:`WILCOXON_EXACT_UP_TO` differences the normal approximation without continuity
    correction, as scipy takes it; at or below, scipy.stats itself."""
    d = np.asarray(d, dtype=float)
    if d.shape[-1] <= WILCOXON_EXACT_UP_TO:
        from scipy import stats  # exact or permutation distributions: small samples only

        res = stats.wilcoxon(d, zero_method=zero_method)
        return float(res.statistic), float(res.pvalue)
    i_zeros = d == 0
    if zero_method == "wilcox":
        d = np.where(i_zeros, np.nan, d)
    count = float(d.shape[-1] - np.count_nonzero(np.isnan(d), axis=-1))
    r, t = rankdata(np.abs(d), return_ties=True)
    r_plus = np.sum((d > 0).astype(float) * r, axis=-1)
    r_minus = np.sum((d < 0).astype(float) * r, axis=-1)
    if zero_method == "zsplit":
        r_zero_2 = np.sum(i_zeros.astype(float) * r, axis=-1) / 2
        r_plus, r_minus = r_plus + r_zero_2, r_minus + r_zero_2
    mn = count * (count + 1.0) * 0.25
    se = count * (count + 1.0) * (2.0 * count + 1.0)
    if zero_method == "pratt":
        n_zero = float(np.count_nonzero(i_zeros, axis=-1))
        mn -= n_zero * (n_zero + 1.0) * 0.25
        se -= n_zero * (n_zero + 1.0) * (2.0 * n_zero + 1.0)
        if np.any(i_zeros):
            t[..., 0] = 0.0
    tie_correct = np.sum(t**3 - t, axis=-1)
    se = np.sqrt((se - tie_correct / 2) / 24)
    z = (r_plus - mn) / se
    p = 2 * special.ndtr(-np.abs(z))
    return float(np.minimum(r_plus, r_minus)), float(p)


def mcnemar_exact(b10: int, b01: int) -> tuple[float, float]:
    """statsmodels' ``mcnemar(table, exact=True)``: (min(b, c), two-sided p) from the
    discordant counts."""
    statistic = np.minimum(b10, b01)
    p = binom_cdf(statistic, b10 + b01, 0.5) * 2
    return float(statistic), float(np.minimum(p, 1))


def spearman(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """``stats.spearmanr(x, y)``: (rho, two-sided p) of 1-D arrays, neither constant
    (NaN and NaN where either holds a NaN)."""
    a = np.column_stack((np.asarray(x, dtype=float), np.asarray(y, dtype=float)))
    if np.isnan(a).any():
        return math.nan, math.nan
    ranked = np.apply_along_axis(rankdata, 0, a)
    rs = np.corrcoef(ranked, rowvar=False)
    dof = a.shape[0] - 2
    with np.errstate(divide="ignore"):
        t = rs * np.sqrt((dof / ((rs + 1.0) * (1.0 - rs))).clip(0))
    p = 2 * special.stdtr(dof, -np.abs(t))
    return float(rs[1, 0]), float(p[1, 0])


def rank_pairings_p(x_ranks: np.ndarray, y_ranks: np.ndarray, n_resamples: int, seed: int):
    """``stats.permutation_test((x_ranks, y_ranks), pearson r, permutation_type="pairings",
    vectorized=True, n_resamples=n_resamples, rng=np.random.default_rng(seed)).pvalue``:
    every pairing where they number ``n_resamples`` or fewer, else that many drawn as
    scipy draws them."""
    data = [np.asarray(x_ranks, dtype=float), np.asarray(y_ranks, dtype=float)]
    n = data[0].shape[-1]
    observed = pearson_r(*data)
    n_max = math.factorial(n) ** 2
    if n_resamples >= n_max:
        exact, n_resamples = True, n_max
        indices = np.asarray(list(product(*(permutations(range(n)) for _ in range(2)))))
    else:
        exact = False
        rng = np.random.default_rng(seed)
        tiled = np.tile(np.arange(n), (n_resamples, 2, 1))
        indices = rng.permuted(tiled, axis=-1)[:n_resamples]
    indices = np.swapaxes(indices, 0, 1)
    null = pearson_r(data[0][..., indices[0]], data[1][..., indices[1]])
    adjustment = 0 if exact else 1
    gamma = np.abs(EPS * 100 * observed)
    less = (np.count_nonzero(null <= observed + gamma) + adjustment) / (n_resamples + adjustment)
    more = (np.count_nonzero(null >= observed - gamma) + adjustment) / (n_resamples + adjustment)
    return float(np.clip(np.minimum(np.float64(less), np.float64(more)) * 2, 0.0, 1.0))
