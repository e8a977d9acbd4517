"""A sweep ready to run: the spec, its suite, its configs and the work still to do."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from evaluation.backends import Backend, make_backend
from evaluation.errors import SpecError
from evaluation.run._work import WorkItem, WorkKey
from evaluation.spec import Config, SweepSpec, load_spec, make_plan
from evaluation.suites import Suite, load_suite


@dataclass(frozen=True)
class Sweep:
    spec: SweepSpec
    suite: Suite
    configs: tuple[Config, ...]

    @property
    def metrics(self) -> tuple[str, ...]:
        """The spec's metrics, else the suite's defaults."""
        return self.spec.metrics or self.suite.default_metrics

    @property
    def simulated(self) -> bool:
        return any(h.kind == "simulated" for h in self.spec.hosts)

    @property
    def models(self) -> tuple[str, ...]:
        """Every model the sweep calls (preflight checks each): the configs' models, then
        their pipelines' embedding models."""
        embedders = [
            c.pipeline.params["embed_model"]
            for c in self.configs
            if c.pipeline is not None and "embed_model" in c.pipeline.params
        ]
        return tuple(dict.fromkeys([c.model for c in self.configs] + embedders))

    @property
    def embed_models(self) -> tuple[str, ...]:
        """The embedding models the metrics need (``semantic_similarity``)."""
        from evaluation.metrics import embed_model_of  # pulls in the scoring libraries

        return tuple(dict.fromkeys(m for name in self.metrics if (m := embed_model_of(name))))

    @property
    def required_models(self) -> tuple[str, ...]:
        """Every model some host must have before the run: generation and embedding."""
        return tuple(dict.fromkeys((*self.models, *self.embed_models)))

    def work_items(self, done: Collection[WorkKey] = ()) -> list[WorkItem]:
        """Every (config, case, sample) not in ``done``, config-major in sweep order."""
        items = [
            WorkItem(config, case, self.suite.name, sample)
            for config in self.configs
            for case in self.suite.cases
            for sample in range(self.spec.samples_per_case)
        ]
        return [item for item in items if item.key not in done] if done else items


def prepare_sweep(spec_path: str | Path) -> Sweep:
    """Load and validate everything a sweep needs, before any generation: the spec, its
    suite, the limits (``max_configs``, ``max_generations``) and that every metric can
    score the suite's task type."""
    spec = load_spec(spec_path)
    suite = load_suite(spec.suite)
    _check_metrics(spec, suite)
    plan = make_plan(spec, len(suite.cases))  # refuses a sweep past its limits
    return Sweep(spec=spec, suite=suite, configs=plan.configs)


def _check_metrics(spec: SweepSpec, suite: Suite) -> None:
    # pulls in the scoring libraries
    from evaluation.metrics import embed_model_of, unsuited_metric

    where = str(spec.path) if spec.path is not None else None
    for i, name in enumerate(spec.metrics):
        if reason := unsuited_metric(name, suite.task_type):
            raise SpecError(f"{reason}; pick another metric", field=f"metrics[{i}]", path=where)
    # the suite's default metrics too, when the spec names none
    for i, name in enumerate(spec.metrics or suite.default_metrics):
        model = embed_model_of(name)
        if model is not None and not any(h.serves(model) for h in spec.hosts):
            raise SpecError(
                f"{name} needs embedding model '{model}', which no host serves (each lists "
                "its models); add it to a host's models",
                field=f"metrics[{i}]" if spec.metrics else "metrics",
                path=where,
            )


def open_backends(sweep: Sweep, *, simulated_time_scale: float = 0.0) -> dict[str, Backend]:
    """One backend per host. The simulated backend is given the suite (its "knowledge")
    and how much of its simulated latency to really sleep."""
    backends: dict[str, Backend] = {}
    for host in sweep.spec.hosts:
        extra = (
            {
                "suites": {sweep.suite.name: sweep.suite},
                "templates": sweep.spec.templates,
                "time_scale": simulated_time_scale,
            }
            if host.kind == "simulated"
            else {}
        )
        backends[host.name] = make_backend(host, sweep.spec.limits, **extra)
    return backends
