"""The report's figures, drawn with matplotlib's object API (no pyplot state, no display)
and embedded as PNG data URIs so the HTML file stands alone. Configs are named by their
leaderboard number ("#3") in crowded plots; the leaderboard table gives the labels."""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.colors import ListedColormap, to_hex
from matplotlib.figure import Figure

from evaluation.statistics import MultiComparison, ParetoFront
from evaluation.wording import cost_words

_ACCENT = "#2b5fab"
_MUTED = "#9aa3b5"
SHADED_TRENDS = 3  # more overlapping interval bands are unreadable
SIMULATED_MARK = "SIMULATED"


def config_colours(configs: Sequence[str]) -> dict[str, str]:
    """One colour per config, in leaderboard order, the same in every plot: tab10 up to
    10 configs, tab20 up to 20, then evenly spaced hues (all distinct)."""
    n = len(configs)
    if n <= 10:
        cmap, points = colormaps["tab10"], range(n)
    elif n <= 20:
        cmap, points = colormaps["tab20"], range(n)
    else:
        cmap, points = colormaps["hsv"], np.linspace(0, 1, n, endpoint=False)
    return {c: to_hex(cmap(p)) for c, p in zip(configs, points, strict=True)}


def mark_simulated(fig: Figure) -> None:
    """Stamp SIMULATED across the figure, so it cannot pass as a real model's results
    when copied out of the report on its own."""
    fig.text(
        0.5,
        0.5,
        SIMULATED_MARK,
        ha="center",
        va="center",
        rotation=20,
        fontsize=28,
        fontweight="bold",
        color="#c0392b",
        alpha=0.18,
        zorder=10,
    )


def png_data_uri(fig: Figure, *, dpi: int = 110) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


_TICK_CHARS = 40


def _tick(label: str) -> str:
    """A config label short enough for a tick: a pipeline config's label (model, every
    parameter, the embedding model) ran to ~90 characters and left the axes no width."""
    return label if len(label) <= _TICK_CHARS else label[: _TICK_CHARS - 1] + "…"


def _figure(width: float, height: float) -> tuple[Figure, object]:
    fig = Figure(figsize=(width, height), layout="constrained")
    ax = fig.add_subplot()
    ax.grid(alpha=0.3)
    return fig, ax


def interval_plot(
    rows: pd.DataFrame, metric: str, names: Mapping[str, str], *, title: str
) -> Figure:
    """Each config's mean of ``metric`` with its interval (columns config, ``metric``,
    ``<metric>_ci_low``, ``<metric>_ci_high``), best at the top."""
    data = rows.dropna(subset=[metric]).iloc[::-1]
    fig, ax = _figure(7.5, 0.32 * len(data) + 1.2)
    y = np.arange(len(data))
    mean = data[metric].to_numpy(float)
    low = data[f"{metric}_ci_low"].to_numpy(float)
    high = data[f"{metric}_ci_high"].to_numpy(float)
    err = np.vstack([np.nan_to_num(mean - low), np.nan_to_num(high - mean)])
    colours = config_colours(list(names))
    for i, config in enumerate(data["config"]):
        colour = colours.get(config, _ACCENT)
        ax.errorbar(
            mean[i : i + 1],
            y[i : i + 1],
            xerr=err[:, i : i + 1],
            fmt="o",
            color=colour,
            ecolor=colour,
            capsize=3,
        )
    ax.set_yticks(y, [_tick(names.get(c, c)) for c in data["config"]])
    ax.set_xlabel(f"{metric} (mean, 95% interval)")
    ax.set_title(title)
    return fig


def significance_matrix(multi: MultiComparison, order: Sequence[str], names: Mapping[str, str]):
    """Row config against column config: green where the row is significantly better
    (adjusted), red where significantly worse, grey otherwise; cells show adjusted p."""
    k = len(order)
    index = {c: i for i, c in enumerate(order)}
    sign = np.zeros((k, k))
    text = np.full((k, k), "", dtype=object)
    for ac in multi.comparisons:
        c = ac.comparison
        if c.a not in index or c.b not in index:
            continue
        i, j = index[c.a], index[c.b]
        better = c.diff is not None and (c.diff > 0) == multi.higher_is_better and c.diff != 0
        s = (1 if better else -1) if ac.significant else 0
        sign[i, j], sign[j, i] = s, -s
        p = "–" if ac.p_adjusted is None else f"{ac.p_adjusted:.2g}"
        text[i, j] = text[j, i] = p
    fig = Figure(figsize=(0.42 * k + 2.2, 0.4 * k + 1.4), layout="constrained")
    ax = fig.add_subplot()
    colours = ListedColormap(["#e8836f", "#eef0f4", "#7cc490"])
    ax.imshow(sign, cmap=colours, vmin=-1.5, vmax=1.5)
    for i in range(k):
        for j in range(k):
            ax.text(j, i, text[i, j] if i != j else "", ha="center", va="center", fontsize=7)
    labels = [names.get(c, c) for c in order]
    ax.set_xticks(range(k), labels, rotation=90)
    ax.set_yticks(range(k), labels)
    ax.set_title(f"{multi.metric}: row vs column ({multi.adjustment}-adjusted p)")
    return fig


def parameter_plot(facts: pd.DataFrame, parameter: str, metric: str) -> Figure:
    """Config means of ``metric`` against ``parameter`` values (numeric, or categories
    such as the model or the prompt template), with the mean per value."""
    data = facts.dropna(subset=[parameter, metric])
    fig, ax = _figure(4.2, 3.0)
    numeric = pd.api.types.is_numeric_dtype(data[parameter])
    if numeric:
        x = data[parameter].to_numpy(float)
    else:
        categories = sorted(data[parameter].astype(str).unique())
        x = data[parameter].astype(str).map({c: i for i, c in enumerate(categories)}).to_numpy()
        ax.set_xticks(range(len(categories)), categories, rotation=20)
    ax.scatter(x, data[metric], color=_MUTED, s=18, label="config")
    per_value = data.assign(x=x).groupby("x")[metric].mean()
    ax.plot(per_value.index, per_value.to_numpy(), "o-", color=_ACCENT, label="mean per value")
    ax.set_xlabel(parameter)
    ax.set_ylabel(metric)
    ax.legend(fontsize=7)
    return fig


def quality_latency(
    facts: pd.DataFrame,
    quality: str,
    cost: str,
    front: ParetoFront,
    names: Mapping[str, str],
) -> Figure:
    """Every config's quality against its cost, the Pareto front drawn as a step line."""
    data = facts.dropna(subset=[quality, cost])
    fig, ax = _figure(7.0, 4.2)
    on_front = data["config"].isin(front.configs)
    colours = config_colours(list(names))
    ax.scatter(
        data[cost],
        data[quality],
        c=[colours.get(c, _MUTED) for c in data["config"]],
        edgecolors=["black" if f else "none" for f in on_front],
        linewidths=1.2,
        label="config (black edge: on the Pareto front)",
    )
    if front.points:
        xs = [p[2] for p in front.points]
        ys = [p[1] for p in front.points]
        ax.step(xs, ys, where="post", color=_ACCENT, alpha=0.6)
    for config, x, y in zip(data["config"], data[cost], data[quality], strict=True):
        ax.annotate(
            names.get(config, config), (x, y), xytext=(3, 3), textcoords="offset points", fontsize=7
        )
    ax.set_xlabel(f"{cost_words(cost)}, lower is better")
    ax.set_ylabel(quality)
    ax.legend(fontsize=8)
    return fig


def latency_distributions(
    latencies: Mapping[str, np.ndarray], order: Sequence[str], names: Mapping[str, str]
) -> Figure:
    """Box plots of each config's per-generation latency (``latencies``: config -> its
    successful generations' latencies, ``repository.ok_latencies``)."""
    present = [c for c in order if len(latencies.get(c, ())) > 0]
    fig, ax = _figure(7.5, 0.32 * len(present) + 1.2)
    values = [latencies[c] for c in present[::-1]]
    if values:
        boxes = ax.boxplot(
            values, vert=False, widths=0.6, flierprops={"markersize": 3}, patch_artist=True
        )
        colours = config_colours(list(names))
        for box, config in zip(boxes["boxes"], present[::-1], strict=True):
            box.set_facecolor(colours.get(config, _MUTED))
            box.set_alpha(0.7)
        ax.set_yticks(range(1, len(present) + 1), [names.get(c, c) for c in present[::-1]])
    ax.set_xlabel("latency per generation (s)")
    return fig


def trends(
    history: pd.DataFrame, metric: str, order: Sequence[str], names: Mapping[str, str]
) -> Figure:
    """Each config's mean of ``metric`` in each run, runs in order of start, with the
    intervals shaded when few configs are drawn; ``history`` has config, experiment,
    created_at, mean, ci_low, ci_high."""
    runs = history.sort_values("created_at").drop_duplicates("experiment")
    shade = history["config"].nunique() <= SHADED_TRENDS
    position = {name: i for i, name in enumerate(runs["experiment"])}
    fig, ax = _figure(7.5, 3.8)
    colours = config_colours(list(names))
    for config in [c for c in order if (history["config"] == c).any()]:
        part = history[history["config"] == config].sort_values("created_at")
        x = part["experiment"].map(position).to_numpy(float)
        (line,) = ax.plot(
            x, part["mean"], "o-", color=colours.get(config), label=names.get(config, config)
        )
        if shade:
            ax.fill_between(
                x,
                part["ci_low"].astype(float),
                part["ci_high"].astype(float),
                color=line.get_color(),
                alpha=0.1,
            )
    ticks = [
        f"{name}\n{pd.Timestamp(t):%Y-%m-%d %H:%M}"
        for name, t in zip(runs["experiment"], runs["created_at"], strict=True)
    ]
    ax.set_xticks(range(len(ticks)), ticks, fontsize=7)
    ax.set_xlim(-0.5, len(ticks) - 0.5)
    ax.set_ylabel(f"{metric} (mean per run)")
    ax.legend(fontsize=7, ncols=2, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return fig


def star_plot(summary: pd.DataFrame, names: Mapping[str, str]) -> Figure:
    """Mean stars per criterion and config with intervals (columns config, criterion,
    mean, ci_low, ci_high)."""
    criteria = list(dict.fromkeys(summary["criterion"]))
    configs = list(dict.fromkeys(summary["config"]))
    fig, ax = _figure(7.0, 3.4)
    width = 0.8 / max(1, len(configs))
    colours = config_colours(list(names))
    for k, config in enumerate(configs):
        part = summary[summary["config"] == config].set_index("criterion").reindex(criteria)
        x = np.arange(len(criteria)) + k * width
        mean = part["mean"].to_numpy(float)
        err = np.vstack(
            [
                np.nan_to_num(mean - part["ci_low"].to_numpy(float)),
                np.nan_to_num(part["ci_high"].to_numpy(float) - mean),
            ]
        )
        ax.bar(
            x,
            mean,
            width,
            yerr=err,
            capsize=3,
            color=colours.get(config),
            label=names.get(config, config),
        )
    ax.set_xticks(np.arange(len(criteria)) + width * (len(configs) - 1) / 2, criteria)
    ax.set_ylim(0, 5.5)
    ax.set_ylabel("mean stars (1–5)")
    ax.legend(fontsize=8)
    return fig
