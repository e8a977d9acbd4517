"""From generations to what the selector fits and shows.

The selector fits one row per (config, suite). The case is the unit of evidence: the
generations of one case (samples, or reruns of the same config on the same case) are
averaged first, and a case counts at most once (its weight is the summed weight of its
generations, capped at 1), so rerunning a sweep repeats evidence rather than adding cases.
Quality is the weighted mean of the case means; latency p50/p95 are Harrell–Davis
quantile estimates (Harrell & Davis, Biometrika 69, 1982), because the plain sample
95th percentile of a few dozen right-skewed latencies is biased low (about −4% at 13
generations with a log-normal spread of 0.15). Harrell–Davis is biased low too for an
upper quantile from few generations (−3% at 10 with that spread), so the rows the
selector fits carry it corrected for log-normal latencies (:func:`unbiased_quantile`);
``evidence`` keeps the plain Harrell–Davis figure a user can check. Tokens/s and
energy are means.

Each target also gets ``<target>_noise``: the sampling variance of the row's value on the
fitting scale (log for latency, speed and energy), so training can tell how much of its
error is measurement noise rather than model error:

- quality: s² / k (s² the variance of the case means, k the number of cases);
- log p50, log p95: q(1 − q)/φ(z_q)² · s_log² / n (:func:`quantile_noise_factor`: π/2
  for the median, 4.47 for p95), the large-sample variance of a sample quantile of
  normal log latencies, which Harrell–Davis shares (simulated with scipy's
  ``hdquantiles``: 3.4 at n = 10 counting its bias, 3.9–4.1 at n = 20–200). An earlier
  version used 1 + 1.645²/2 for p95, the variance of the parametric μ̂ + 1.645σ̂, which
  is not what is computed: it understated a 10-generation p95's error by a fifth;
- log of a mean (tokens/s, energy): (s / mean)² / n (delta method).

Rows with a single generation borrow the median within-row spread of their target.

Latency's tail is not assumed log-normal where the data can say more: ``evidence`` also
carries ``latency_tail_ratio``, per model and task type, a distribution-free upper
confidence bound on the 95th percentile of latency / its (config, suite) median, pooled
over the model's generations on that task type where that is lower than over all its
task types, else over all (:func:`tail_ratio`). A task type's own lighter tail counts:
classification's 0.6 s calls were held to QA's spread (a newcomer's configs measured
within a limit were refused). A heavier one does not: the bound from one task type's
fewer generations is looser, and taking it cost 2.2 ± 1.0 points of hits in the tails
world (tuning seeds, 10k), where every task type has its model's tail. A reload that
makes a fifth of calls 3× slower, or a Pareto tail, is in that ratio whatever the
shape; 10 generations of one config seldom show it, and the log-normal correction reads
them as a narrow spread. A config whose own calls show a lighter tail than the rest of
its model's (:func:`lighter_tail`) is not held to the model's bound: real configs differ
(a 64-token answer's tail is not a 16-token one's).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Iterator
from statistics import NormalDist

import numpy as np
import pandas as pd

from evaluation.wording import counted
from selection.features import add_parameter_b
from selection.frame import CONFIG_COLUMNS

TARGETS = ("quality", "latency_p50", "latency_p95", "tokens_per_s", "energy_j")
KEYS = ["config_hash", "suite"]


def quantile_noise_factor(q: float) -> float:
    """n·Var(log quantile estimate)/s_log²: q(1 − q)/φ(z_q)² for normal log latencies."""
    dist = NormalDist()
    return q * (1 - q) / dist.pdf(dist.inv_cdf(q)) ** 2


QUANTILE_LEVEL = {"latency_p50": 0.5, "latency_p95": 0.95}
QUANTILE_NOISE = {name: quantile_noise_factor(q) for name, q in QUANTILE_LEVEL.items()}
"""Per latency quantile target, the factor of s_log²/n giving its sampling variance."""
TAIL_LEVEL = 0.95
TAIL_CONFIDENCE = 0.9
"""``latency_tail_ratio`` bounds the ``TAIL_LEVEL`` quantile with this confidence."""
MIN_TAIL_GROUP = 5
"""A (config, suite) with fewer ok latencies gives no median to divide by."""
MAX_CORRECTED_N = 200
"""Beyond this many generations the bias is below 0.02 sd and left uncorrected."""


@functools.lru_cache(maxsize=512)
def harrell_davis_bias(n: int, q: float) -> float:
    """E[Harrell–Davis estimate of quantile q from n standard normal draws] − z_q.

    The estimate is a weighted mean of order statistics, so its expectation is the same
    weights over the expected normal order statistics, E[Z_(i:n)] = ∫ z·f_(i:n)(z) dz
    (numerical quadrature). Upper quantiles from few draws read low: −0.21 sd at n = 10
    for p95, −0.53 at n = 5; about 0 from n = 20 (+0.015 at 200); 0 for the median at any n."""
    from scipy import stats

    if n < 1 or n > MAX_CORRECTED_N or q == 0.5:  # the median's is 0 by symmetry
        return 0.0
    z = np.linspace(-9.0, 9.0, 1201)
    cdf, pdf = stats.norm.cdf(z), stats.norm.pdf(z)
    a, b = (n + 1) * q, (n + 1) * (1 - q)
    weights = np.diff(stats.beta.cdf(np.arange(n + 1) / n, a, b))
    used = weights > 1e-12  # the order statistics near the quantile
    i = np.arange(1, n + 1)[used][:, None]
    densities = stats.beta.pdf(cdf[None, :], i, n - i + 1) * pdf[None, :]
    expected = np.trapezoid(z[None, :] * densities, z, axis=1)
    return float(weights[used] @ expected) - NormalDist().inv_cdf(q)


def unbiased_quantile(
    value: pd.Series, log_variance: pd.Series, n: pd.Series, name: str
) -> pd.Series:
    """A Harrell–Davis latency quantile ``name`` (:data:`QUANTILE_LEVEL`) freed of its
    small-sample bias for log-normal latencies: log value − s_log·bias(n). Pooling ten
    configs' 10-generation p95s keeps their shared −0.2 sd bias while narrowing their
    error tenfold, so uncorrected they made the selector call configs 1–5% over a limit
    feasible (selector benchmark, 30k generations)."""
    counts = n.fillna(0).astype(int)
    bias = counts.map(lambda k: harrell_davis_bias(int(k), QUANTILE_LEVEL[name]))
    sd = np.sqrt(log_variance.where(counts > 1)).fillna(0.0)
    return value * np.exp(-sd * bias)


def order_statistic_bound(values: np.ndarray, q: float, confidence: float) -> float:
    """A distribution-free upper confidence bound on the ``q`` quantile of ``values``'
    distribution: the k-th smallest value, k the least with P(Binomial(n, q) < k) ≥
    ``confidence`` (at least k − 1 of n draws fall below the true quantile only that
    rarely). NaN when n is too small for any (45 draws for the 95th percentile at 90%)."""
    from scipy import stats

    n = len(values)
    if n == 0:
        return math.nan
    k = int(stats.binom.ppf(confidence, n, q)) + 1
    if k > n:
        return math.nan
    return float(np.sort(values)[k - 1])


def tail_ratio(frame: pd.DataFrame, by: list[str]) -> pd.Series:
    """Per ``by`` (a model, or a model and task type), :func:`order_statistic_bound` of
    the ``TAIL_LEVEL`` quantile of latency / the median latency of its (config, suite),
    over the ok generations in (config, suite) groups of at least ``MIN_TAIL_GROUP``: how
    far above its median a config's slow calls reach, pooled over configs and measured,
    not assumed. NaN where there are too few generations for the bound."""
    ratios = latency_over_median(frame)
    return (
        ratios["ratio"]
        .groupby([ratios[key] for key in by])
        .agg(lambda r: order_statistic_bound(r.to_numpy(), TAIL_LEVEL, TAIL_CONFIDENCE))
    )


def tail_source(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    """Per ``by`` (as :func:`tail_ratio`), where its bound comes from: ``calls``, the
    generations pooled, ``configs``, how many configs they are of, and ``runs``, the
    experiments of the calls at or above the bound, each with how many ("nc-n3 (5 calls),
    nc-n6 (1 call)", most first). A newcomer's config met a 2.5 s limit by its own calls one
    day and not 3 s the next, as other configs' nights of its model, run under load, had
    raised its model's bound; nothing said where the bound came from."""
    ratios = latency_over_median(frame)
    found: dict[object, tuple[int, int, str]] = {}
    for key, part in ratios.groupby([ratios[k] for k in by]):
        bound = order_statistic_bound(part["ratio"].to_numpy(), TAIL_LEVEL, TAIL_CONFIDENCE)
        if not math.isfinite(bound):
            continue
        slow = part.loc[part["ratio"] >= bound, "experiment"].astype(str).value_counts()
        runs = ", ".join(f"{name} ({counted(int(n), 'call')})" for name, n in slow.items())
        found[key[0] if len(by) == 1 else key] = (len(part), part["config_hash"].nunique(), runs)
    table = pd.DataFrame.from_dict(found, orient="index", columns=["calls", "configs", "runs"])
    if len(by) > 1 and len(table):
        table.index = pd.MultiIndex.from_tuples(table.index, names=by)
    return table


def latency_over_median(frame: pd.DataFrame) -> pd.DataFrame:
    """Each ok generation's latency / the median of its (config, suite), in (config,
    suite) groups of at least ``MIN_TAIL_GROUP``: ``ratio`` beside the generation's
    config_hash, model, task_type and experiment ("" where the frame has none)."""
    ok = frame[(frame["status"] == "ok") & (frame["latency_s"] > 0)]
    latency = ok["latency_s"].astype(float)
    groups = latency.groupby([ok["config_hash"], ok["suite"]])
    use = groups.transform("size") >= MIN_TAIL_GROUP
    experiment = ok["experiment"] if "experiment" in ok else pd.Series("", index=ok.index)
    return ok.loc[use, ["config_hash", "model", "task_type"]].assign(
        experiment=experiment[use], ratio=(latency / groups.transform("median"))[use]
    )


LIGHTER_TAIL_SHARE = 0.2
"""The upper share of the other configs' calls a lighter-tailed config seldom reaches
(the 95th percentile alone would take 90 calls to tell a config that never reaches
it from chance)."""
LIGHTER_TAIL_ALPHA = 0.01
Counts = tuple[int, int, float]
"""A config's calls above its line, its calls, and the line (:func:`_tail_counts`)."""


def lighter_tail(frame: pd.DataFrame) -> pd.Series:
    """Per (config_hash, task_type), whether the config's calls show its tail lighter
    than the rest of its model's on the task type: of its n calls, k lie above the
    other configs' upper ``LIGHTER_TAIL_SHARE`` of latency / (config, suite) median,
    and P(Binomial(n, share) ≤ k) is below ``LIGHTER_TAIL_ALPHA`` after Benjamini–
    Hochberg's adjustment over the model's configs on the task type. Unadjusted, 1% of a
    heavy-tailed model's hundreds of configs were exempted by chance, the lucky-fast
    ones, which the choice then picked: in the tails world at 100k (seed 1000) true p95
    over the limit went from 1.1% to 11.1%.

    Real configs differ: on llama.cpp, 16-token answers reached 3.7–5.2× their median
    and 64-token ones 1.8–2.5× (gemma3-270m, smollm2-135m); the model's pooled bound
    refused a 64-token config measured at 2.3 s p95 as 4.5 s. A config of a model with
    a slow mode (a fifth of calls 3× slower) whose 10 calls all came fast (11% of such
    configs) is not told apart; among 4 configs, after 35 such calls it is. Where the
    slow calls are fewer than a fifth of the others', the line falls in their body and
    a lighter config is not told apart: it keeps the model's bound. A Mann–Whitney test
    of the upper halves as well (each at 0.5%) told such configs apart, but in the tails
    world it exempted configs of heavy-tailed models by chance: true p95 over the limit
    0.6 → 1.9%, hits −1.4 ± 1.1 points (tuning seeds, 10k); this test alone changed no
    pick there."""
    found: dict[tuple[str, str], bool] = {}
    for _, task, counts in _tail_counts(latency_over_median(frame)):
        for config, q in zip(counts, _adjusted(counts.values()), strict=True):
            found[(config, task)] = bool(q < LIGHTER_TAIL_ALPHA)
    index = pd.MultiIndex.from_tuples(list(found), names=["config_hash", "task_type"])
    return pd.Series(list(found.values()), index=index, dtype=bool)


LIGHTER_TAIL_MAX_CALLS = 2000
"""Calls beyond which :func:`calls_until_lighter` says none."""


def calls_until_lighter(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """How many calls of a config would let :func:`lighter_tail` tell its tail from its
    model's, if none of its further calls lies above its line (the other configs' upper
    ``LIGHTER_TAIL_SHARE``) and the other configs' calls stay as they are: the same test,
    the same adjustment. Per (config_hash, task_type) not found lighter: ``at``, the
    calls in all, ``more``, those beyond its calls so far, and ``line``, its line as a
    multiple of its median (NaN where it has no other config to compare with or
    ``LIGHTER_TAIL_MAX_CALLS`` would not do). Per (model, task_type), the same for a
    config never run there (``at``, ``line``: the line over all the model's calls).
    A config whose 12 calls lie below its line has a chance of 0.8¹² = 6.9% > 1%: the
    test cannot fire before 21 calls (0.8²¹ = 0.92%), later where the adjustment over
    its model's configs asks more, or where some of its calls lie above the line."""
    configs: dict[tuple[str, str], tuple[float, float, float]] = {}
    fresh: dict[tuple[str, str], tuple[float, float]] = {}
    ratios = latency_over_median(frame)
    lines = ratios.groupby(["model", "task_type"])["ratio"].quantile(1 - LIGHTER_TAIL_SHARE)
    for model, task, counts in _tail_counts(ratios):
        chances = [float(c) for c in _chances(counts.values())]
        adjusted = _adjusted(counts.values())
        for i, (config, (above, n, line)) in enumerate(counts.items()):
            if adjusted[i] < LIGHTER_TAIL_ALPHA:
                continue
            at = _fewest_calls(chances, i, above, n)
            configs[(config, task)] = (at, at - n, line)
        fresh[(model, task)] = (_fewest_calls(chances, None, 0, 0), float(lines[(model, task)]))
    index = pd.MultiIndex.from_tuples(list(configs), names=["config_hash", "task_type"])
    columns = ["at", "more", "line"]
    # float even where empty (no model with two configs): an empty frame's columns are
    # objects, which a stored selector keeps as text ("" for missing), not numbers
    per_config = pd.DataFrame(list(configs.values()), index=index, columns=columns, dtype=float)
    index = pd.MultiIndex.from_tuples(list(fresh), names=["model", "task_type"])
    fresh_frame = pd.DataFrame(list(fresh.values()), index=index, columns=["at", "line"])
    return per_config, fresh_frame.astype(float)


def _tail_counts(ratios: pd.DataFrame) -> Iterator[tuple[str, str, dict[str, Counts]]]:
    """Per (model, task_type) of ``ratios`` (:func:`latency_over_median`): the model, the
    task type, and per config with other configs beside it, (its calls above the others'
    upper ``LIGHTER_TAIL_SHARE`` of latency / (config, suite) median, its calls, that
    line)."""
    for (model, task), part in ratios.groupby(["model", "task_type"]):
        counts: dict[str, Counts] = {}
        for config, own in part.groupby("config_hash")["ratio"]:
            others = part.loc[part["config_hash"] != config, "ratio"].to_numpy()
            if len(others) == 0:
                continue
            line = float(np.quantile(others, 1 - LIGHTER_TAIL_SHARE))
            counts[str(config)] = (int((own.to_numpy() > line).sum()), len(own), line)
        if counts:
            yield str(model), str(task), counts


def _chances(counts: Iterable[Counts]) -> np.ndarray:
    """P(Binomial(n, share) ≤ above) per (above, n, line)."""
    from scipy import stats

    found = np.array([(above, n) for above, n, _ in counts], dtype=float).reshape(-1, 2)
    return stats.binom.cdf(found[:, 0], found[:, 1], LIGHTER_TAIL_SHARE)


def _adjusted(counts: Iterable[Counts]) -> np.ndarray:
    """Benjamini–Hochberg's adjustment of :func:`_chances` over the model's configs."""
    from scipy import stats

    return stats.false_discovery_control(_chances(counts), method="bh")


def _fewest_calls(chances: list[float], i: int | None, above: int, n: int) -> float:
    """The fewest calls (more than ``n``) at which config ``i`` of ``chances`` (None: a
    config added to them) with ``above`` calls over its line passes the lighter-tail
    test; NaN past ``LIGHTER_TAIL_MAX_CALLS``. Its chance falls as calls grow, and an
    adjusted chance rises with its own: a bisection."""
    from scipy import stats

    def passes(calls: int) -> bool:
        values = list(chances) + ([] if i is not None else [1.0])
        where = len(values) - 1 if i is None else i
        values[where] = float(stats.binom.cdf(above, calls, LIGHTER_TAIL_SHARE))
        adjusted = stats.false_discovery_control(values, method="bh")
        return bool(adjusted[where] < LIGHTER_TAIL_ALPHA)

    low, high = n, LIGHTER_TAIL_MAX_CALLS
    if high <= low or not passes(high):
        return math.nan
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (low, middle) if passes(middle) else (middle, high)
    return float(high)


def case_means(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Scored ok generations collapsed to one row per ``keys`` + case: ``quality`` (the
    weighted mean of its generations) and ``weight`` (their summed weight, capped at 1)."""
    scored = frame[(frame["status"] == "ok") & frame["quality"].notna() & (frame["weight"] > 0)]
    scored = scored.assign(qw=scored["quality"] * scored["weight"])
    sums = scored.groupby([*keys, "suite", "case_id"], sort=False)[["qw", "weight"]].sum()
    sums = sums[sums["weight"] > 0] if not sums.empty else sums
    return pd.DataFrame(
        {"quality": sums["qw"] / sums["weight"], "weight": sums["weight"].clip(upper=1.0)}
    ).reset_index()


def aggregate(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per (config, suite): config and context features, the targets with their
    ``_noise``, ``n`` (summed weight of the scored cases), ``n_latency`` and
    ``n_simulated`` (generations of the simulated backend)."""
    ok = frame[frame["status"] == "ok"]
    if ok.empty:
        return pd.DataFrame(columns=[*CONFIG_COLUMNS, "suite", "task_type", *TARGETS, "n"])
    grouped = ok.groupby(KEYS)
    per_case = case_means(ok, ["config_hash"])
    per_case["qw"] = per_case["quality"] * per_case["weight"]
    cases = per_case.groupby(KEYS)
    sums = cases[["qw", "weight"]].sum()
    latency = ok[ok["latency_s"] > 0]
    log_latency = np.log(latency["latency_s"]).groupby([latency[k] for k in KEYS])
    table = pd.concat(
        [
            grouped[[*CONFIG_COLUMNS[1:], "task_type"]].first(),
            grouped["input_chars"].mean(),
            (sums["qw"] / sums["weight"]).rename("quality"),
            cases["weight"].sum().rename("n"),
            _noise(cases["quality"].var(), cases["quality"].count(), 1.0, "quality"),
            harrell_davis(latency, "latency_s", 0.5).rename("latency_p50"),
            harrell_davis(latency, "latency_s", 0.95).rename("latency_p95"),
            log_latency.count().rename("n_latency"),
            grouped["simulated"].sum().rename("n_simulated"),  # said of the errors
            *(
                _noise(log_latency.var(), log_latency.count(), factor, name)
                for name, factor in QUANTILE_NOISE.items()
            ),
            *(_mean_and_noise(grouped[name], name) for name in ("tokens_per_s", "energy_j")),
        ],
        axis=1,
    )
    log_variance = log_latency.var().reindex(table.index)
    for name in QUANTILE_LEVEL:
        table[name] = unbiased_quantile(table[name], log_variance, table["n_latency"], name)
    table = table.reset_index()
    table["n"] = table["n"].fillna(0.0)
    table["n_latency"] = table["n_latency"].fillna(0).astype(int)
    table["n_simulated"] = table["n_simulated"].fillna(0).astype(int)
    return add_parameter_b(table)


def harrell_davis(frame: pd.DataFrame, column: str, q: float, keys: list[str] = KEYS) -> pd.Series:
    """The Harrell–Davis estimate of quantile ``q`` of ``column`` per ``keys`` (default
    (config, suite)): a Beta((n+1)q, (n+1)(1−q))-weighted average of the order statistics."""
    from scipy.special import betainc

    data = frame[[*keys, column]].dropna().sort_values([*keys, column])
    grouped = data.groupby(keys, sort=False)
    n = grouped[column].transform("size").to_numpy(dtype=float)
    i = grouped.cumcount().to_numpy(dtype=float) + 1
    a, b = (n + 1) * q, (n + 1) * (1 - q)
    weight = betainc(a, b, i / n) - betainc(a, b, (i - 1) / n)
    return data.assign(_hd=weight * data[column]).groupby(keys)["_hd"].sum()


def _noise(variance: pd.Series, count: pd.Series, factor: float, name: str) -> pd.Series:
    """factor · s² / n, with the median s² for rows of one generation."""
    fill = variance.median() if variance.notna().any() else 0.0
    return (factor * variance.fillna(fill) / count.where(count > 0)).rename(f"{name}_noise")


def _mean_and_noise(values: pd.core.groupby.SeriesGroupBy, name: str) -> pd.DataFrame:
    mean, count = values.mean(), values.count()
    relative = values.var() / mean.where(mean > 0) ** 2
    return pd.concat([mean.rename(name), _noise(relative, count, 1.0, name)], axis=1)


def evidence(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (config, task type): what was measured. ``n`` scored generations and
    ``n_cases`` distinct cases (reruns and samples of a case are one case), failed and
    simulated counts, the mean of the case means with its standard error and 95% interval
    over cases (:func:`_quality_interval`: inside [0, 1], clustered by case group),
    Harrell–Davis latency p50/p95 with ``log_latency_var`` and ``n_latency``, the number
    of suites, the ``quality_metric`` its quality was read from (several joined by "+",
    "" where not said), and the model's ``latency_tail_ratio`` on the task type and
    ``latency_tail_ratio_all_tasks`` over all (:func:`tail_ratio`); whether the config's
    calls show a ``latency_tail_lighter`` tail (:func:`lighter_tail`) and its own bound
    then; where not, how many calls would show it (``latency_tail_lighter_at``, ``_more``,
    ``_line``), and for a config of the model never run on the task type
    (``latency_tail_new_at``, ``_line``: :func:`calls_until_lighter`); where the model's
    bound comes from (:func:`tail_source`: ``latency_tail_calls``, ``_configs``,
    ``_runs``, and ``latency_tail_over``, the task type it was pooled on, "" for all)."""
    keys = ["config_hash", "task_type"]
    failed = frame[frame["status"] != "ok"].groupby(keys).size().rename("n_failed")
    ok = frame[frame["status"] == "ok"]
    grouped = ok.groupby(keys)
    per_case = _with_clusters(case_means(ok, keys), ok)
    cases = per_case.groupby(keys)["quality"]
    latency = ok[ok["latency_s"] > 0]
    log_latency = np.log(latency["latency_s"]).groupby([latency[k] for k in keys])
    table = pd.concat(
        [
            grouped["quality"].count().rename("n"),
            cases.count().rename("n_cases"),
            cases.mean().rename("quality_mean"),
            cases.std().rename("quality_sd"),
            harrell_davis(latency, "latency_s", 0.5, keys).rename("latency_p50"),
            harrell_davis(latency, "latency_s", 0.95, keys).rename("latency_p95"),
            log_latency.var().rename("log_latency_var"),
            log_latency.count().rename("n_latency"),
            grouped["suite"].nunique().rename("n_suites"),
            grouped["simulated"].sum().rename("n_simulated"),
            _metrics_used(ok, keys),
            failed,
        ],
        axis=1,
    )
    for name in ("n", "n_cases", "n_failed", "n_simulated", "n_latency"):
        table[name] = table[name].fillna(0).astype(int)
    table["quality_metric"] = table["quality_metric"].fillna("").astype(str)
    cases_n = table["n_cases"].where(table["n_cases"] > 1)
    table["quality_se"] = table["quality_sd"] / np.sqrt(cases_n)
    bounds = per_case.groupby(keys)[["quality", "cluster"]].apply(_quality_interval)
    bounds = bounds.apply(pd.Series)
    table[["quality_ci_low", "quality_ci_high"]] = bounds.reindex(table.index).to_numpy()
    table = table.reset_index()
    models = table["config_hash"].map(ok.groupby("config_hash")["model"].first())
    own_task = pd.MultiIndex.from_arrays([models, table["task_type"]])
    ratio = tail_ratio(frame, ["model", "task_type"]).reindex(own_task).to_numpy()
    every_task = models.map(tail_ratio(frame, ["model"])).to_numpy()
    table["latency_tail_ratio"] = np.where(
        np.isfinite(ratio), np.fmin(ratio, every_task), every_task
    )
    table["latency_tail_ratio_all_tasks"] = every_task
    on_task = np.isfinite(ratio) & ~(ratio > every_task)
    sources = (tail_source(frame, ["model", "task_type"]), tail_source(frame, ["model"]))
    here, anywhere = sources[0].reindex(own_task), sources[1].reindex(models)
    for column in ("calls", "configs"):
        found = np.where(on_task, here[column].to_numpy(float), anywhere[column].to_numpy(float))
        table[f"latency_tail_{column}"] = found.astype(float)
    runs = np.where(on_task, here["runs"].fillna(""), anywhere["runs"].fillna(""))
    table["latency_tail_runs"] = pd.Series(runs, index=table.index, dtype=str)
    table["latency_tail_over"] = pd.Series(
        np.where(on_task, table["task_type"], ""), index=table.index, dtype=str
    )
    own_key = pd.MultiIndex.from_arrays([table["config_hash"], table["task_type"]])
    lighter = lighter_tail(frame).reindex(own_key).fillna(False).to_numpy(dtype=bool)
    table["latency_tail_lighter"] = lighter
    config_bound = tail_ratio(frame, ["config_hash", "task_type"]).reindex(own_key)
    table["latency_tail_ratio_config"] = np.where(
        lighter, config_bound.to_numpy(), table["latency_tail_ratio"]
    )
    until, fresh = calls_until_lighter(frame)
    for column in until.columns:
        table[f"latency_tail_lighter_{column}"] = until[column].reindex(own_key).to_numpy()
    for column in fresh.columns:
        table[f"latency_tail_new_{column}"] = fresh[column].reindex(own_task).to_numpy()
    return table


def _metrics_used(ok: pd.DataFrame, keys: list[str]) -> pd.Series:
    """Per ``keys``, the metrics quality was read from, joined by "+" ("" not said)."""
    if "quality_metric" not in ok:
        return pd.Series(dtype=str, name="quality_metric")
    names = ok["quality_metric"].where(ok["quality_metric"].notna(), "").astype(str)
    used = names.groupby([ok[k] for k in keys]).agg(lambda n: "+".join(sorted(set(n) - {""})))
    return used.rename("quality_metric")


def _with_clusters(cases: pd.DataFrame, frame: pd.DataFrame) -> pd.DataFrame:
    """``cases`` (:func:`case_means`) with ``cluster``: the case's ``case_group`` within
    its suite (groups of two suites are never one cluster), None for a case in no group
    (its own cluster)."""
    labelled = frame.loc[frame["case_group"].notna(), ["suite", "case_id", "case_group"]]
    groups = labelled.drop_duplicates(["suite", "case_id"])
    found = cases.merge(groups, on=["suite", "case_id"], how="left")["case_group"]
    found.index = cases.index
    suite = cases["suite"].astype("string")
    return cases.assign(cluster=suite.str.cat(found.astype("string"), sep="\x1f"))


def _quality_interval(cases: pd.DataFrame) -> tuple[float, float]:
    """95% interval of the mean of a config's case qualities (``quality``) on the [0, 1]
    scale, clustered by ``cluster`` (:func:`_with_clusters`): Wilson for 0/1 cases, else
    the t interval on the logit scale (:func:`evaluation.statistics.mean_interval`, the
    one ``evalflow show`` gives, so the same cases get the same interval), so it never
    leaves [0, 1] (the plain t interval of 3 correct out of 36 went to −1.2%); NaN below
    2 cases. Unclustered, a config's 28 right of 36 qa-short cases (9 groups of 4) got
    61.9–88.3% where show gave 58.9–89.5%."""
    from evaluation.statistics import mean_interval

    found = mean_interval(
        cases["quality"].to_numpy(dtype=float),
        cases["cluster"].to_numpy(dtype=object),
        bounds=(0.0, 1.0),
    )
    return found.ci if found.ci is not None else (math.nan, math.nan)


def case_scores(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (config, task type, case): the case's mean quality, ``case`` = "suite/case id".
    What paired comparisons between measured configs are made on."""
    cases = case_means(frame, ["config_hash", "task_type"])
    return pd.DataFrame(
        {
            "config_hash": cases["config_hash"].astype(str),
            "task_type": cases["task_type"].astype(str),
            "case": cases["suite"].astype(str) + "/" + cases["case_id"].astype(str),
            "quality": cases["quality"].astype(float),
        }
    )
