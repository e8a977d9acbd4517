"""An interval as the judge-versus-people numbers show it (show, compare, the report, view,
judge-card, rate-next): cut to the scale of what it is an interval of, or, where it is
no interval, why, in words. The computed and stored figures are unchanged: the cut is
made only where the user sees it (as the selector shows its quality, 9f88af25).

- The scale: a mean of scores on the unit scale lies in [0, 1] and a difference of two
  in [-1, 1], but a t interval over a few cases reaches past them (a judge's mean in a
  real-model run read [-0.419, 1.419]): the part outside says nothing the scale does not.
- Too few cases: below ``MIN_INTERVAL`` (3) cases the figure has no interval. Two ratings
  give a t interval on 1 degree of freedom (t = 12.7): in the world of
  ``benchmarks/perf/judge_calibration.py --few`` (people's stars, 200,000 draws of each
  n, 2026-11-29) 25.4% of them were a point (the two ratings equal: [0.500, 0.500], which
  covers nothing) and the other 74.6% wider than the whole scale; at 3 ratings 7.4% were
  a point and the others covered 98.9%, at 5 0.7% and 95.6%, from 6 to 10 93.6–95.3%.
- A point: where every case has the same score the standard error is 0 and the interval
  a single number, at any n; it is not an interval either, and is said so.
"""

from __future__ import annotations

#: Cases (rated cases, for people's and the combined figures) below which a figure is
#: shown without an interval: at 2 the interval is a point or wider than the scale.
MIN_INTERVAL = 3
UNIT = (0.0, 1.0)  # a mean on the unit scale, (stars − 1)/4
DIFFERENCE = (-1.0, 1.0)  # a difference of two such means


def shown_interval(
    ci: tuple[float, float] | None,
    n: int,
    bounds: tuple[float, float] = UNIT,
    *,
    unit: str = "case",
    minimum: int = MIN_INTERVAL,
) -> tuple[tuple[float, float] | None, str]:
    """``ci`` as shown: (cut to ``bounds``, "") or (None, why there is none, in words:
    too few ``unit``\\s (``n`` < ``minimum``), or every one of them the same). ``minimum``
    1: an interval that holds at any n (Clopper–Pearson). A ``ci`` of None is passed
    through as (None, ""): its estimate's note says why."""
    if ci is None:
        return None, ""
    units = f"{n} {unit}" + ("" if n == 1 else "s")
    if n < minimum:
        return None, f"{units}: too few for an interval, {minimum} needed"
    low, high = float(ci[0]), float(ci[1])
    if high - low <= 1e-12 * max(1.0, abs(low)):
        return None, f"{units}, all the same: no interval"
    return cut(low, high, bounds), ""


def cut(low: float, high: float, bounds: tuple[float, float]) -> tuple[float, float]:
    """The interval (``low``, ``high``) cut to ``bounds``: each end kept inside them."""
    lo, hi = bounds
    return min(max(low, lo), hi), min(max(high, lo), hi)


def interval_words(
    estimate: float | None,
    ci: tuple[float, float] | None,
    n: int,
    bounds: tuple[float, float] = UNIT,
    *,
    signed: bool = False,
    note: str = "",
    unit: str = "case",
    minimum: int = MIN_INTERVAL,
) -> str:
    """ "0.667 [0.262, 1.000]", "0.500 (2 cases: too few for an interval, 3 needed)",
    "0.500 (1 case, no CI)" (``note``, where there is no ``ci``), or "—" (no estimate)."""
    if estimate is None:
        return "—"
    fmt = "+.3f" if signed else ".3f"
    shown, why = shown_interval(ci, n, bounds, unit=unit, minimum=minimum)
    if shown is not None:
        return f"{estimate:{fmt}} [{shown[0]:{fmt}}, {shown[1]:{fmt}}]"
    why = why or note
    return f"{estimate:{fmt}}" + (f" ({why})" if why else "")
