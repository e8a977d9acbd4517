"""A stored item bank read back, and whether it can estimate for a config: what the
series watch's bank estimates (``_nights``) need, kept apart from ``_bank``, which
makes banks from stored scores and so asks the watch which runs to leave out."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlmodel import Session

from evaluation.itembank.schema import BankAbility, BankCase, ItemBank

if TYPE_CHECKING:  # the fit and the estimates (scipy): imported where they are used
    from evaluation.itembank._estimate import Estimate
    from evaluation.itembank._fit import ItemFit

MIN_CONFIGS = 8  # configs that ran half the suite or more: fewer and no bank is made
PIPELINE_REASON = "a pipeline's cases are not exchangeable (their calls share documents and steps)"


@dataclass(frozen=True)
class Bank:
    """A stored bank read back: its row, its fit, its cases in order."""

    row: ItemBank
    fit: ItemFit
    cases: list[str]

    def estimate(self, scores: dict[str, float], seed: int = 0) -> Estimate:
        """The full-suite score of a config that scored ``scores`` (case id → mean)."""
        from evaluation.itembank._estimate import calibrated_estimate

        index = {case: i for i, case in enumerate(self.cases)}
        observed = {index[c]: v for c, v in scores.items() if c in index}
        found = calibrated_estimate(
            self.fit,
            observed,
            ability_mean=self.row.ability_mean,
            ability_sd=self.row.ability_sd,
            interval_scale=self.row.interval_scale,
            seed=seed,
        )
        return replace(found, bank=self.row.version, untrusted=self.untrusted)

    @property
    def untrusted(self) -> bool:
        """Whether the bank predicts held-out scores worse than each case's plain mean
        (from its stored log-losses): its estimates are then shown with that caveat."""
        r = self.row
        return (
            r.heldout_logloss is not None
            and r.baseline_logloss is not None
            and r.heldout_logloss > r.baseline_logloss
        )

    def summary(self) -> str:
        """One paragraph: version, what it rests on, how well it fits."""
        r = self.row
        lines = [
            f"item bank {r.suite} v{r.version} ({r.metric}): {len(r.configs)} configs "
            f"({', '.join(r.families)}), {r.cases} cases, {r.scores} scores",
            f"  held-out scores: log-loss {r.heldout_logloss:.3f} (each case's mean alone: "
            f"{r.baseline_logloss:.3f})",
        ]
        if r.check_configs:
            lines.append(
                f"  held-out configs ({r.check_configs}), estimated from "
                f"{r.check_share:.0%} of the cases: mean absolute error "
                f"{100 * (r.check_mae or 0):.1f} points, 95% intervals covered "
                f"{100 * (r.check_coverage or 0):.0f}% before widening by "
                f"{r.interval_scale:.2f}"
            )
        else:
            lines.append(
                "  held-out configs: not checked (it needs at least 2 configs that scored "
                "every case); intervals not widened"
            )
        if self.untrusted:
            lines.append(
                "  warning: on held-out scores the bank predicts worse than each case's "
                "plain mean: its estimates are not to be trusted (more configs, or "
                "another --metric)"
            )
        return "\n".join(lines)


def model_family(model: str) -> str:
    """A model's family, from its name alone (a model never run has nothing else): the
    leading letters of its base name, lower-cased (``qwen2.5:7b`` → ``qwen``,
    ``llama3.1:8b`` → ``llama``, ``sim-large:8b`` → ``sim``)."""
    base = model.split(":")[0].split("/")[-1]
    found = re.match(r"[A-Za-z]+", base)
    return found.group(0).lower() if found else base


def current_bank(session: Session, suite: str, metric: str | None = None) -> Bank | None:
    """The newest bank of ``suite`` (on ``metric``, else on any), or None."""
    import numpy as np

    query = select(ItemBank).where(ItemBank.suite == suite)
    if metric:
        query = query.where(ItemBank.metric == metric)
    row = session.exec(query.order_by(ItemBank.id.desc()).limit(1)).scalars().first()
    if row is None:
        return None
    items = (
        session.exec(select(BankCase).where(BankCase.bank_id == row.id).order_by(BankCase.position))
        .scalars()
        .all()
    )
    abilities = (
        session.exec(select(BankAbility).where(BankAbility.bank_id == row.id)).scalars().all()
    )
    from evaluation.itembank._fit import ItemFit

    cov = np.array([[[i.var_log_a, i.cov_log_a_b], [i.cov_log_a_b, i.var_b]] for i in items])
    fit = ItemFit(
        difficulty=np.array([i.difficulty for i in items]),
        discrimination=np.array([i.discrimination for i in items]),
        cov=cov,
        ability=np.array([a.ability for a in abilities]),
        ability_se=np.array([a.se for a in abilities]),
    )
    return Bank(row, fit, [i.case_id for i in items])


def why_not(bank: Bank | None, suite_digest: str, families: list[str]) -> str:
    """Why ``bank`` cannot estimate for configs of ``families`` on the suite as it is
    now (``suite_digest``), in one line; empty when it can."""
    if bank is None:
        return "no item bank for this suite (`evalflow bank SUITE` makes one)"
    if bank.row.suite_digest != suite_digest:
        return (
            f"the suite's content differs from what item bank v{bank.row.version} was "
            f"calibrated on (this ran {suite_digest[:8]}, the bank {bank.row.suite_digest[:8]}): "
            f"a bank for it needs {MIN_CONFIGS} configs run on that content in full, then "
            f"`evalflow bank {bank.row.suite}`"
        )
    unseen = sorted(set(families) - set(bank.row.families))
    if unseen:
        return (
            f"model family {', '.join(unseen)} never calibrated in item bank "
            f"v{bank.row.version} (families {', '.join(bank.row.families)})"
        )
    return ""
