"""Does the selector pick the truly best feasible config? Simulated data, known truth.

Per-generation rows are drawn with numpy from a simulated world's ground truth for the
world's models (4; 5 in ``field``, 6 in ``local``) x 48 settings x 4 templates (fewer
where the world has fewer configs) on 10 suites (2 per task type), then the selector is
trained and asked held-out queries: task types and latency/energy limits that were not
used to choose the selector's settings (tuning used qa and summarization, with other
limits). The worlds (``--worlds``) are the family of ``selector_worlds.py``: additive,
interacting, context cliffs, heavy-tailed and bimodal latencies, ceiling/floor effects
and a task with no signal, sampling settings that change quality and output length, few
and many configs per model; and ``field`` (``selector_world_field.py``) and ``local``
(``selector_world_local.py``), held out: each written from a description of local LLMs'
behaviour without reading the selector, never run with ``--tune``. Seeds:
``--seeds`` defaults to the family's report-only seeds (``REPORT_SEEDS``); ``--tune``
runs the seeds settings may be tuned on (``TUNE_SEEDS``). Generated data are cached on
disk (``--cache``), keyed by world, size and seed.
Each row's ``prompt_tokens`` is what Ollama's ``prompt_eval_count`` reports: the world's
prompt tokens for the case (``TrueProfile.prompt_tokens``), at most ``num_ctx`` (the
server cuts a longer prompt).
A suite's cases are the same for every config run on it, as in a sweep: each case has
one input length (log-normal around the suite's typical length) and, for 0/1 metrics,
one difficulty (Gaussian copula, as the simulated backend does), so configs run on the
same cases are paired and a (config, suite) aggregate's ``input_chars`` is the suite's,
not noise drawn anew for every config.

A query is a hit when the recommended config's true quality is within 1 point (0–100)
of the truly best config whose true p95 latency (and mean energy) meets the limits;
a violation when the recommended config's true p95 latency exceeds the limit. A hit
that breaks the limit is still a hit there (a pick may beat the best feasible config
only by being too slow), so the headline is the limit-respecting hit: a hit whose true
p95 (and energy) meets the limits. The hand baseline answers the same queries the way a
user could from the leaderboard, with the selector's own definition of measured-feasible
(:func:`selection._evidence_rule.measured_feasible`: >= 10 ok generations on the task
type, Harrell–Davis measured p95 within the limit, from
:func:`selection.aggregate.evidence`), plus measured mean energy within its limit: the
best measured mean among those.

Each (world, size, seed) is a unit: it draws new data and new queries, trains the
selector and prints its figures; the closing table gives each share as its mean over
seeds ± the standard error across seeds. One seed's figure moves by 10–20 points (its 90
queries share three task types' truths), so a target is judged on 8 seeds (the default),
not 2. ``selector_ceiling.py`` gives what a method knowing the world's functional form and
the true latencies reaches on the same data (beside the selector unless ``--no-ceiling``).

Units run size by size in the order of ``--sizes``, each size seed by seed over all
worlds, so a stopped run leaves every world with about as many seeds. ``--out`` gets one
JSON line per unit as it finishes (held-out shares, the ceiling, training, per-query
and whole-unit seconds; written by the parent process only). ``--jobs N`` runs N units
at once, each in its own process with BLAS and OpenMP on one thread (a unit's figures
are the same as run alone: they depend on its seed only). ``--resume`` skips the units
``--out`` already holds (by world, size, seed, and tuning or report-only), so a stopped
run goes on where it was; the closing table then covers the finished units, old and
new. A unit kept from a run without the ceiling is not rerun for it.

    .venv/bin/python benchmarks/perf/selector_benchmark.py [--worlds additive cliff ...] \
        [--sizes 1000 3000 10000 30000 100000] [--seeds ... | --tune] [--cache DIR] \
        [--held-out-only] [--no-ceiling] [--out FILE [--resume]] [--jobs N]
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist

# Sibling scripts are imported by name: their folder goes first on the path, so this works
# from any folder (`python benchmarks/perf/NAME.py` or `python -m benchmarks.perf.NAME`
# from the repository root, or imported from elsewhere).
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np
import pandas as pd
from selector_world_field import FIELD
from selector_world_local import LOCAL
from selector_worlds import REPORT_SEEDS, TUNE_SEEDS, World
from selector_worlds import WORLDS as BUILT_WORLDS

from evaluation.backends._simulated_truth import DEFAULT_NUM_CTX
from evaluation.spec import Config, GenerationParams, PromptTemplate
from evaluation.spec._params import NAMES
from evaluation.statistics.intervals import mean_interval
from evaluation.statistics.student_t import t_quantile
from flows.cli.options import count
from selection._evidence_rule import MIN_GENERATIONS
from selection.aggregate import evidence
from selection.frame import REQUIRED_COLUMNS, validate_training_frame
from selection.model import SelectorModel
from selection.recommender import recommend_from_model
from selection.training import TrainingResult, train_selector

WORLDS = {**BUILT_WORLDS, "field": FIELD, "local": LOCAL}
HELD_OUT_WORLDS = ("field", "local")  # written apart from the selector; never run with --tune
GRID = {
    "temperature": (0.0, 0.3, 0.7, 1.0),
    "top_p": (0.3, 0.9),
    "num_ctx": (512, 2048, 4096),
    "num_predict": (64, 256),
}
TEMPLATES = ("default", "concise", "cot", "few_shot")
TASK_TYPES = ("qa", "summarization", "classification", "generation", "code")
TUNING_TASKS = ("qa", "summarization")
FAMILY = [name for name in WORLDS if name != "demo"]
CHARS_PER_WORD = 6
SUITES = {task: ((f"{task}-a", 0.8, -0.02), (f"{task}-b", 1.2, 0.02)) for task in TASK_TYPES}
CONTINUOUS = ("summarization", "generation")  # rougeL-like scores; the rest are 0/1
MIN_CASES_PER_PAIR = 10
FAILURE_RATE = 0.01
DIFFICULTY = 0.5  # share of the 0/1 latent that is the case's own, as in the backend


def configs(world: World) -> list[Config]:
    """The world's configs: the full grid, less those the world does not have."""
    grid = [dict(zip(GRID, values, strict=True)) for values in itertools.product(*GRID.values())]
    every = [
        Config(
            model, GenerationParams(**params), PromptTemplate(template, f"[{template}] {{input}}")
        )
        for model in world.models
        for params in grid
        for template in TEMPLATES
    ]
    return [config for config in every if world.keep(config)]


def truth_table(world: World, all_configs: list[Config]) -> pd.DataFrame:
    """True expected metric, p95 latency and energy per (config, task type) at the
    task's typical input length."""
    rows = []
    for config, task in itertools.product(all_configs, TASK_TYPES):
        truth = world.profile(config.model, config.params, config.template.name, task)
        rows.append(
            {
                "config_hash": config.hash,
                "task_type": task,
                "quality": _metric(truth.quality, truth.chatty_share, task),
                "latency_p95": truth.latency_mean_s * world.latency_shape(config.model).p95,
                "latency_mean": truth.latency_mean_s,
                "energy_j": truth.energy_j_per_generation,
            }
        )
    return pd.DataFrame(rows)


def _metric(quality: float, chatty: float, task: str) -> float:
    """What the task's metric converges to: exact_match fails chatty answers."""
    return quality * (1 - chatty) if task == "qa" else quality


def simulate(
    world: World,
    all_configs: list[Config],
    n_generations: int,
    seed: int,
    cache: Path | None = None,
) -> pd.DataFrame:
    """``n_generations`` rows: random (config, suite) pairs with at least
    MIN_CASES_PER_PAIR cases each (all pairs once there are enough generations), every
    value drawn around the truth; read from ``cache`` when drawn before."""
    path = None if cache is None else cache / f"{world.name}-{n_generations}-{seed}.pkl"
    if path is not None and path.exists():
        cached = pd.read_pickle(path)
        if {*REQUIRED_COLUMNS, "prompt_tokens"} <= set(cached.columns):
            return cached  # else drawn before a column was added (stop): draw again
    frame = _simulate(world, all_configs, n_generations, seed)
    if path is not None:  # written whole, then renamed: a stopped run leaves no torn file
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.partial")
        frame.to_pickle(partial)
        partial.replace(path)
    return frame


def _simulate(
    world: World, all_configs: list[Config], n_generations: int, seed: int
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    suites = [(task, *suite) for task in TASK_TYPES for suite in SUITES[task]]
    pairs = len(all_configs) * len(suites)
    chosen = rng.choice(pairs, size=min(pairs, n_generations // MIN_CASES_PER_PAIR), replace=False)
    cases = np.full(len(chosen), n_generations // len(chosen))
    cases[: n_generations - cases.sum()] += 1
    parts = []
    for pair, n in zip(chosen, cases, strict=True):
        config, (task, suite, length, offset) = (
            all_configs[pair // len(suites)],
            suites[pair % len(suites)],
        )
        words = _case_words(world, seed, task, suite, length)[:n]
        parts.append(_draw(world, config, task, suite, offset, words, rng, seed))
    frame = pd.concat(parts, ignore_index=True)
    failed = rng.random(len(frame)) < FAILURE_RATE
    frame.loc[failed, "status"] = "failed"
    frame.loc[failed, ["quality", "latency_s", "ttft_s", "tokens_per_s", "energy_j"]] = np.nan
    return frame


def _draw(
    world: World,
    config: Config,
    task: str,
    suite: str,
    offset: float,
    words: np.ndarray,
    rng: np.random.Generator,
    seed: int,
) -> pd.DataFrame:
    n = len(words)
    truths = [
        world.profile(
            config.model,
            config.params,
            config.template.name,
            task,
            prompt_tokens=math.ceil(w * 1.3),
        )
        for w in words
    ]
    expected = np.clip(
        [_metric(t.quality, t.chatty_share, task) + offset for t in truths], 0.001, 0.999
    )
    if task in CONTINUOUS:
        quality = rng.beta(expected * 12, (1 - expected) * 12)
    else:
        difficulty = _difficulty(seed, suite)[:n]
        latent = math.sqrt(DIFFICULTY) * difficulty + math.sqrt(1 - DIFFICULTY) * rng.normal(size=n)
        threshold = np.array([NormalDist().inv_cdf(q) for q in expected])
        quality = (latent < threshold).astype(float)
    mean = np.array([t.latency_mean_s for t in truths])
    latency = mean * world.latency_shape(config.model).draw(rng, n)
    watts = truths[0].energy_j_per_generation / truths[0].latency_mean_s
    params, model = config.params, world.models[config.model]
    num_ctx = DEFAULT_NUM_CTX if params.num_ctx is None else params.num_ctx
    return pd.DataFrame(
        {
            "experiment": f"bench-{suite}",
            "config_hash": config.hash,
            "model": config.model,
            "family": model.family,
            "parameter_size": model.parameter_size,
            "quantization": model.quantization,
            **{name: getattr(params, name) for name in NAMES},
            "template": config.template.name,
            "template_text": config.template.text,
            "task_type": task,
            "suite": suite,
            "case_id": [f"case-{i}" for i in range(n)],
            "input_chars": words * CHARS_PER_WORD,
            "quality": quality,
            "latency_s": latency,
            "ttft_s": latency * 0.2,
            "tokens_per_s": truths[0].tokens_per_s * rng.lognormal(0, 0.05, n),
            "prompt_tokens": [min(t.prompt_tokens, num_ctx) for t in truths],
            "energy_j": latency * watts,
            "simulated": True,
            "status": "ok",
        }
    )


def _difficulty(seed: int, suite: str) -> np.ndarray:
    """Case difficulties of a suite, shared by every config run on it."""
    rng = np.random.default_rng([seed, *suite.encode()])
    return rng.normal(size=100_000 // MIN_CASES_PER_PAIR)


def _case_words(world: World, seed: int, task: str, suite: str, length: float) -> np.ndarray:
    """Input length in words of each case of a suite: a case is the same text for every
    config run on it (log-normal spread around the suite's typical length)."""
    rng = np.random.default_rng([seed, 1, *suite.encode()])
    spread = rng.lognormal(0, 0.2, 100_000 // MIN_CASES_PER_PAIR)
    return np.maximum(5, world.prompt_words[task] * length * spread).round().astype(int)


def queries(truth: pd.DataFrame, seed: int) -> pd.DataFrame:
    """Latency limits drawn log-uniformly between the 3rd and 97th percentile of the task's
    true p95 latencies (limits are round numbers in life, not a config's exact latency).
    Tuning: qa and summarization. Held out: the other task types, a third of them with an
    energy limit (drawn the same way) as well."""
    rng = np.random.default_rng(seed)
    rows = []
    for task in TASK_TYPES:
        table = truth[truth["task_type"] == task]
        held_out = task not in TUNING_TASKS
        for i in range(30 if held_out else 20):
            energy = _draw_limit(table["energy_j"], rng)[0] if held_out and i % 3 == 2 else None
            latency, position = _draw_limit(table["latency_p95"], rng)
            rows.append(
                {
                    "task_type": task,
                    "max_latency_s": latency,
                    "max_energy_j": energy,
                    "held_out": held_out,
                    "tightness": TIGHTNESS[min(int(3 * position), 2)],
                }
            )
    return pd.DataFrame(rows)


TIGHTNESS = ("tight", "middle", "loose")
"""Thirds of the latency limit's range (log scale, 3rd to 97th percentile of the task's
true p95s): "tight" is the third where few configs are fast enough."""


def _draw_limit(values: pd.Series, rng: np.random.Generator) -> tuple[float, float]:
    """A limit and its position (0–1) in the log range it was drawn from."""
    low, high = np.log(values.quantile(0.03)), np.log(values.quantile(0.97))
    drawn = rng.uniform(low, high)
    return float(np.exp(drawn)), float((drawn - low) / (high - low))


def hand_table(frame: pd.DataFrame) -> pd.DataFrame:
    """What a user reads off the leaderboard per (config, task type), as the selector
    measures it (:func:`selection.aggregate.evidence`): ok generations, mean quality over
    cases, Harrell–Davis p95 latency, and mean energy."""
    measured = evidence(frame)
    energy = frame[frame["status"] == "ok"].groupby(["config_hash", "task_type"])["energy_j"]
    table = measured.set_index(["config_hash", "task_type"])
    return pd.DataFrame(
        {
            "n": table["n"],
            "quality": table["quality_mean"],
            "p95": table["latency_p95"],
            "energy": energy.mean().reindex(table.index),
        }
    ).reset_index()


def measured_feasible(
    hand: pd.DataFrame, task: str, latency: float, energy: float | None
) -> pd.DataFrame:
    """The rows of :func:`hand_table` of ``task`` measured with at least MIN_GENERATIONS
    ok generations whose measured p95 (and energy) meets the limits."""
    rows = hand[(hand["task_type"] == task) & (hand["n"] >= MIN_GENERATIONS)]
    rows = rows[rows["p95"] <= latency]
    if energy is not None:
        rows = rows[rows["energy"] <= energy]
    return rows


def hand_pick(hand: pd.DataFrame, task: str, latency: float, energy: float | None) -> str | None:
    """The hand baseline's config: best measured mean among the measured-feasible configs
    (:func:`measured_feasible`)."""
    rows = measured_feasible(hand, task, latency, energy)
    return None if rows.empty else str(rows.loc[rows["quality"].idxmax(), "config_hash"])


def truly_feasible(
    truth: pd.DataFrame, task: str, latency: float, energy: float | None
) -> pd.DataFrame:
    """The truth's rows of ``task`` whose true p95 latency (and energy) meets the limits."""
    table = truth[truth["task_type"] == task]
    keep = table["latency_p95"] <= latency
    if energy is not None:
        keep &= table["energy_j"] <= energy
    return table[keep]


def evaluate(
    world: World,
    model: SelectorModel,
    truth: pd.DataFrame,
    asked: pd.DataFrame,
    hand: pd.DataFrame,
    baseline: list[str | None] | None = None,
) -> pd.DataFrame:
    """Per query: the selector's, the hand baseline's (``hand_``) and, given
    ``baseline`` (the picks of the selector at ``BASELINE_COMMIT``), that one's
    (``old_``) hit, limit-respecting hit, violations and regret."""
    by_key = truth.set_index(["config_hash", "task_type"])
    results = []
    for number, query in enumerate(asked.itertuples()):
        energy = None if pd.isna(query.max_energy_j) else float(query.max_energy_j)
        answer = recommend_from_model(
            model,
            query.task_type,
            max_latency_s=float(query.max_latency_s),
            max_energy_j=energy,
            input_chars=world.prompt_words[query.task_type] * CHARS_PER_WORD,
        )
        feasible = truly_feasible(truth, query.task_type, float(query.max_latency_s), energy)
        best = feasible["quality"].max() if len(feasible) else None
        record = {
            "held_out": query.held_out,
            "task_type": query.task_type,
            "tightness": query.tightness,
            "status": answer.status,
            "best": best,
        }
        picks = {
            "": answer.choice.config_hash if answer.choice is not None else None,
            "hand_": hand_pick(hand, query.task_type, float(query.max_latency_s), energy),
        }
        if baseline is not None:
            picks["old_"] = baseline[number]
        for prefix, picked in picks.items():
            if picked is not None:
                got = by_key.loc[(picked, query.task_type)]
                record |= {
                    f"{prefix}quality": got["quality"],
                    f"{prefix}violates": got["latency_p95"] > query.max_latency_s,
                    f"{prefix}violates_energy": energy is not None and got["energy_j"] > energy,
                    f"{prefix}violates_mean": got["latency_mean"] > query.max_latency_s,
                    f"{prefix}hit": best is not None and got["quality"] >= best - 0.01,
                }
            else:
                record |= {
                    f"{prefix}hit": best is None,
                    f"{prefix}violates": False,
                    f"{prefix}violates_energy": False,
                    f"{prefix}violates_mean": False,
                }
            record[f"{prefix}fair_hit"] = record[f"{prefix}hit"] and not (
                record[f"{prefix}violates"] or record[f"{prefix}violates_energy"]
            )
            record[f"{prefix}offered"] = picked is not None
            got_quality = record.get(f"{prefix}quality", 0.0)
            record[f"{prefix}regret"] = (best - got_quality) if best is not None else 0.0
        results.append(record)
    return pd.DataFrame(results)


def interval_coverage(world: World, model: SelectorModel, truth: pd.DataFrame) -> dict[str, float]:
    """Share of (config, task type) whose true expected quality / p95 latency lies in the
    selector's 90% interval, and the mean absolute error against the truth."""
    parts = []
    for task in TASK_TYPES:
        predicted = model.predict(model.configs, task, world.prompt_words[task] * CHARS_PER_WORD)
        true = truth[truth["task_type"] == task].set_index("config_hash")
        parts.append(predicted.join(true.add_suffix("_true"), how="inner"))
    joined = pd.concat(parts)
    return {
        "quality": _inside(joined, "quality"),
        "latency_p95": _inside(joined, "latency_p95"),
        "quality_mae": float((joined["quality"] - joined["quality_true"]).abs().mean()),
        "latency_p95_error": float(
            (
                (joined["latency_p95"] - joined["latency_p95_true"]).abs()
                / joined["latency_p95_true"]
            ).mean()
        ),
    }


def _inside(joined: pd.DataFrame, name: str) -> float:
    true = joined[f"{name}_true"]
    return float(((joined[f"{name}_low"] <= true) & (true <= joined[f"{name}_high"])).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worlds", nargs="+", choices=list(WORLDS))
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[1_000, 3_000, 10_000, 30_000, 100_000],
        help="generations; units run size by size in this order",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=list(REPORT_SEEDS))
    parser.add_argument("--tune", action="store_true", help="run the tuning seeds instead")
    parser.add_argument(
        "--cache", type=Path, default=Path("/tmp/evalflow-selector-worlds"), help="drawn data"
    )
    parser.add_argument("--no-ceiling", action="store_true", help="skip selector_ceiling's form")
    parser.add_argument(
        "--no-baseline", action="store_true", help=f"skip the selector at {BASELINE_COMMIT}"
    )
    parser.add_argument("--out", type=Path, help="append one JSON line per (world, size, seed)")
    parser.add_argument(
        "--held-out-only", action="store_true", help="skip the tuning task types' queries"
    )
    parser.add_argument(
        "--jobs", type=count, default=1, help="units run at once, each in its own process"
    )
    parser.add_argument("--resume", action="store_true", help="skip the units --out already holds")
    args = parser.parse_args()
    if args.resume and args.out is None:
        parser.error("--resume needs --out")
    if args.worlds is None:
        args.worlds = [w for w in FAMILY if not (args.tune and w in HELD_OUT_WORLDS)]
    elif args.tune and set(args.worlds) & set(HELD_OUT_WORLDS):
        held = sorted(set(args.worlds) & set(HELD_OUT_WORLDS))
        verb = "is" if len(held) == 1 else "are"
        parser.error(f"--tune: {', '.join(held)} {verb} held out, nothing is tuned to it")
    seeds = list(TUNE_SEEDS) if args.tune else args.seeds
    units = [
        Unit(world, size, seed, args.tune)
        for size in args.sizes
        for seed in seeds
        for world in args.worlds
    ]
    done = _read_records(args.out) if args.resume else {}
    todo = [unit for unit in units if unit not in done]
    print(
        f"{len(units)} units (world, size, seed), {len(units) - len(todo)} already in "
        f"{args.out}, {len(todo)} to run, {args.jobs} at a time"
    )
    settings = Settings(args.cache, args.held_out_only, not args.no_ceiling, not args.no_baseline)
    for record, report in _run(todo, settings, args.jobs):
        print(report, flush=True)
        done[_unit_of(record)] = record
        if args.out is not None:
            with args.out.open("a") as out:
                out.write(json.dumps(record) + "\n")
    finished = [done[unit] for unit in units if unit in done]
    print_table(finished, args.worlds, args.sizes)
    print_cells(finished, args.worlds, args.sizes)


@dataclass(frozen=True)
class Unit:
    """One run of the benchmark: a world's data of one size drawn with one seed. ``tune``
    keeps tuning runs apart from report-only runs in one ``--out`` file."""

    world: str
    size: int
    seed: int
    tune: bool


@dataclass(frozen=True)
class Settings:
    cache: Path | None
    held_out_only: bool
    ceiling: bool
    baseline: bool = True


BASELINE_COMMIT = "aa5f504"
"""The selector issue 50 measures against (before issue 12's changes)."""
PER_QUERY = ("task_type", "tightness", "held_out", "fair_hit", "hand_fair_hit", "old_fair_hit")


def _baseline_picks(
    unit: Unit, world: World, frame: pd.DataFrame, asked: pd.DataFrame, settings: Settings
) -> list[str | None]:
    """The same queries answered by the selector at ``BASELINE_COMMIT`` trained on the
    same data (in its own process with its own packages: ``_selector_at.py``; the picks
    are cached beside the data)."""
    from _selector_at import picks_at

    wanted = [
        {
            "task_type": q.task_type,
            "max_latency_s": float(q.max_latency_s),
            "max_energy_j": None if pd.isna(q.max_energy_j) else float(q.max_energy_j),
            "input_chars": world.prompt_words[q.task_type] * CHARS_PER_WORD,
        }
        for q in asked.itertuples()
    ]
    cache = settings.cache or Path("/tmp/evalflow-selector-worlds")
    key = f"{unit.world}-{unit.size}-{unit.seed}-{len(asked)}"
    return picks_at(BASELINE_COMMIT, frame, wanted, cache, key)


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _run(units: list[Unit], settings: Settings, jobs: int) -> Iterator[tuple[dict, str]]:
    """Each unit's record and printed report, as units finish. With ``jobs`` > 1 units
    run in that many fresh (spawned) processes whose BLAS and OpenMP run on one thread
    each, so ``jobs`` processes use ``jobs`` cores, not ``jobs`` × cores; a unit's
    figures do not depend on the process it ran in (data and queries come from its seed)."""
    if jobs == 1:
        for unit in units:
            yield run_unit(unit, settings)
        return
    for name in THREAD_VARIABLES:  # read by numpy's BLAS and OpenMP when a worker starts
        os.environ[name] = "1"
    spawn = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=spawn) as pool:
        futures = [pool.submit(run_unit, unit, settings) for unit in units]
        try:
            for future in as_completed(futures):
                yield future.result()
        finally:  # a failed unit or a stopped run: start no more
            pool.shutdown(cancel_futures=True)


@functools.cache
def _world(name: str) -> tuple[World, list[Config], pd.DataFrame]:
    world = WORLDS[name]
    all_configs = configs(world)
    return world, all_configs, truth_table(world, all_configs)


def run_unit(unit: Unit, settings: Settings) -> tuple[dict, str]:
    """Train the selector on one unit's data and answer its queries: the record
    ``--out`` keeps (held-out shares) and the lines printed about it."""
    began = time.perf_counter()
    world, all_configs, truth = _world(unit.world)
    frame = validate_training_frame(
        simulate(world, all_configs, unit.size, unit.seed, settings.cache)
    )
    started = time.perf_counter()
    result = train_selector(frame)
    train_s = time.perf_counter() - started
    asked = queries(truth, unit.seed + 1)
    if settings.held_out_only:
        asked = asked[asked["held_out"]]
    old = _baseline_picks(unit, world, frame, asked, settings) if settings.baseline else None
    started = time.perf_counter()
    outcome = evaluate(world, result.model, truth, asked, hand_table(frame), old)
    per_query = (time.perf_counter() - started) / len(asked)
    ceiling = ceiling_hit(world, frame, truth, asked) if settings.ceiling else math.nan
    lines = [
        f"{unit.world}, {unit.size:,} generations, seed {unit.seed} ({len(all_configs)} "
        f"configs): trained in {train_s:.1f} s on {result.n_rows} (config, suite) "
        f"aggregates; recommend {per_query:.2f} s per query; ceiling (own form, true "
        f"latencies) {ceiling:.1%}",
        _errors(world, result, truth),
        *(f"    {name}: {_summary(part)}" for name, part in _parts(outcome) if len(part)),
    ]
    held = outcome[outcome["held_out"]]
    record = {
        "world": unit.world,
        "size": unit.size,
        "seed": unit.seed,
        "tune": unit.tune,
        "queries": len(held),
        "ceiling": ceiling,
        **{column: float(held[column].mean()) for column in RECORDED if column in held},
        "per_query": outcome[[c for c in PER_QUERY if c in outcome]].values.tolist(),
        "train_s": round(train_s, 1),
        "recommend_s": round(per_query, 3),
        "unit_s": round(time.perf_counter() - began, 1),
    }
    return record, "\n".join(lines)


def ceiling_hit(
    world: World, frame: pd.DataFrame, truth: pd.DataFrame, asked: pd.DataFrame
) -> float:
    """``selector_ceiling.py``'s limit-respecting hit with the world's own functional form
    and the true latencies, on the same data and queries."""
    import warnings

    import selector_ceiling

    factors = selector_ceiling.settings(configs(world))
    with warnings.catch_warnings():  # rank-deficient designs: see selector_ceiling.main
        warnings.simplefilter("ignore")
        estimate = selector_ceiling.fitted_quality(frame, factors, world.form)
    return selector_ceiling.hits(estimate, truth, asked)


RECORDED = (
    "fair_hit",
    "hand_fair_hit",
    "hit",
    "hand_hit",
    "violates",
    "hand_violates",
    "offered",
    "regret",
    "hand_regret",
    "old_fair_hit",
    "old_violates",
)


def _unit_of(record: dict) -> Unit:
    """A record's unit; records written before ``tune`` was kept are told by their seed."""
    tune = record.get("tune", record["seed"] in TUNE_SEEDS)
    return Unit(record["world"], record["size"], record["seed"], tune)


def _read_records(path: Path) -> dict[Unit, dict]:
    """The records an ``--out`` file holds, the last one of a unit winning."""
    if not path.exists():
        return {}
    lines = path.read_text().splitlines()
    return {_unit_of(record): record for record in map(json.loads, filter(None, lines))}


def print_table(records: list[dict], worlds: list[str], sizes: list[int]) -> None:
    """The closing table: per world and size, means ± SE over the seeds it has; the
    differences paired by seed (the ceiling is computed on the same data and queries)."""
    print(
        "\n| world | generations | seeds | selector hit within limits | 0.9 × ceiling "
        "| selector − 0.9 × ceiling | hand hit within limits | selector − hand "
        f"| selector p95 over | hand p95 over | {BASELINE_COMMIT} hit within limits "
        f"| selector − {BASELINE_COMMIT} |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for world, size in itertools.product(worlds, sizes):
        per_seed = pd.DataFrame([r for r in records if (r["world"], r["size"]) == (world, size)])
        if per_seed.empty:
            continue
        per_seed["target"] = 0.9 * per_seed["ceiling"].astype(float)
        print(
            f"| {world} | {size:,} | {len(per_seed)} "
            f"| {_over_seeds(per_seed, 'fair_hit')} "
            f"| {100 * per_seed['target'].mean():.1f} "
            f"| {_over_seeds(per_seed, 'fair_hit', 'target')} "
            f"| {_over_seeds(per_seed, 'hand_fair_hit')} "
            f"| {_over_seeds(per_seed, 'fair_hit', 'hand_fair_hit')} "
            f"| {_over_seeds(per_seed, 'violates')} | {_over_seeds(per_seed, 'hand_violates')} "
            f"| {_over_seeds(per_seed, 'old_fair_hit')} "
            f"| {_over_seeds(per_seed, 'fair_hit', 'old_fair_hit')} |"
        )


def print_cells(records: list[dict], worlds: list[str], sizes: list[int]) -> None:
    """Per world and size, the limit-respecting hit (%, all queries of all seeds) of
    the selector, the selector at ``BASELINE_COMMIT`` and the hand baseline, per task
    type and per third of limit tightness, the selector's cells marked by
    :func:`_marks`; the legend under the table says what a mark means."""
    columns = [*TASK_TYPES, *TIGHTNESS, "all"]
    print(
        f"\n| world | generations | who | {' | '.join(columns)} |\n|---|---|---|"
        + "---|" * len(columns)
    )
    for world, size in itertools.product(worlds, sizes):
        rows = [
            [r["seed"], *q]
            for r in records
            if (r["world"], r["size"]) == (world, size)
            for q in r["per_query"]
        ]
        if not rows:
            continue
        table = pd.DataFrame(rows, columns=["seed", *list(PER_QUERY)[: len(rows[0]) - 1]])
        cells = {c: _cell(table, c) for c in columns}
        for who, column in (
            ("selector", "fair_hit"),
            (BASELINE_COMMIT, "old_fair_hit"),
            ("by hand", "hand_fair_hit"),
        ):
            if column not in table:
                continue
            shown = [
                f"{100 * part[column].mean():.1f}" + (_marks(part) if who == "selector" else "")
                for part in cells.values()
            ]
            print(f"| {world} | {size:,} | {who} | {' | '.join(shown)} |")
    print(f"\n{MARKS_LEGEND}")


MARKS_LEGEND = (
    f"▼: the selector below by hand beyond noise, ▽: below {BASELINE_COMMIT} so: the "
    "paired difference of limit-respecting hits over the cell's queries is below "
    "−t(0.975, seeds − 1) standard errors, the standard error clustered by seed (a seed "
    "draws the data and queries of every task type, and the selector is trained once on "
    "them: its queries are not independent, its seeds are); a one-sided 2.5% test per "
    "cell, so a chooser exactly level is marked in about 1 cell in 40 by chance alone; "
    "a cell with queries from one seed is never marked."
)


def _cell(table: pd.DataFrame, column: str) -> pd.DataFrame:
    if column in TASK_TYPES:
        return table[table["task_type"] == column]
    if column in TIGHTNESS:
        return table[table["tightness"] == column]
    return table


def _marks(part: pd.DataFrame) -> str:
    """▼ below the hand baseline beyond noise, ▽ below the baseline commit so
    (:func:`below_beyond_noise`, the queries clustered by ``part``'s seed)."""
    marks = ""
    for other, mark in (("hand_fair_hit", "▼"), ("old_fair_hit", "▽")):
        if other not in part:
            continue
        diff = part["fair_hit"].astype(float) - part[other].astype(float)
        if below_beyond_noise(diff.to_numpy(), part["seed"].to_numpy()):
            marks += mark
    return marks


def below_beyond_noise(diff: np.ndarray, seeds: np.ndarray) -> bool:
    """Whether paired differences ``diff`` (one per query) are below 0 beyond noise:
    their mean < −t(0.975, C − 1) × its standard error clustered by ``seeds`` (C seeds,
    at least 2; every seed's queries below by the same amount, a zero standard error,
    counts as below). The seed, not the query, is the independent unit: its queries share
    one data draw and one trained selector."""
    estimate = mean_interval(diff, seeds)
    if estimate.mean is None or estimate.mean >= 0 or (estimate.n_clusters or 0) < 2:
        return False
    if estimate.se == 0:
        return True
    return estimate.mean / estimate.se < t_quantile(0.025, estimate.n_clusters - 1)


def _over_seeds(per_seed: pd.DataFrame, column: str, minus: str | None = None) -> str:
    """Mean of a per-query share over seeds ± its standard error across seeds (a seed
    draws new data and new queries, and its 90 queries share three task types' truths, so
    seeds, not queries, are the independent units); ``minus``: the paired difference."""
    if column not in per_seed or (minus and minus not in per_seed):
        return "–"
    values = per_seed[column] - (per_seed[minus] if minus else 0.0)
    se = values.std(ddof=1) / math.sqrt(len(values)) if len(values) > 1 else math.nan
    sign = "+" if minus else ""
    return f"{100 * values.mean():{sign}.1f} ± {100 * se:.1f}"


def _parts(outcome: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    return [("held-out", outcome[outcome["held_out"]]), ("tuning", outcome[~outcome["held_out"]])]


def _summary(part: pd.DataFrame) -> str:
    return (
        f"{len(part)} queries, best or within 1 point and within the limits "
        f"{part['fair_hit'].mean():.1%} (hand baseline {part['hand_fair_hit'].mean():.1%}), "
        f"regardless of the limits {part['hit'].mean():.1%} "
        f"(hand {part['hand_hit'].mean():.1%}), "
        f"true p95 over the limit {part['violates'].mean():.1%} "
        f"(hand {part['hand_violates'].mean():.1%}), "
        f"energy over {part['violates_energy'].mean():.1%}, "
        f"no config offered {(~part['offered']).mean():.1%} "
        f"(hand {(~part['hand_offered']).mean():.1%}), "
        f"mean regret {100 * part['regret'].mean():.2f} points "
        f"(hand {100 * part['hand_regret'].mean():.2f})"
    )


def _errors(world: World, result: TrainingResult, truth: pd.DataFrame) -> str:
    cv = result.metrics
    vs_truth = interval_coverage(world, result.model, truth)
    return (
        f"    grouped CV vs measured aggregates: quality MAE {100 * cv['quality']['mae']:.2f} "
        f"points (model part {100 * cv['quality']['model_rmse']:.2f} RMSE), p95 latency "
        f"{100 * cv['latency_p95']['relative_error']:.1f}%; vs the truth: quality MAE "
        f"{100 * vs_truth['quality_mae']:.2f} points, p95 latency "
        f"{100 * vs_truth['latency_p95_error']:.1f}%, 90% intervals cover the true quality "
        f"{vs_truth['quality']:.0%} and the true p95 {vs_truth['latency_p95']:.0%}"
    )


if __name__ == "__main__":
    main()
