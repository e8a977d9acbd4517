"""The interacting world has the documented structure (docs/simulated-backend.md)."""

import pytest

from evaluation.backends import _simulated_interacting as world
from evaluation.backends._simulated_truth import true_profile as demo_profile
from evaluation.spec import GenerationParams


def quality(model, template="default", task="qa", **params):
    return world.true_profile(model, GenerationParams(**params), template, task).quality


def test_templates_interact_with_model_size():
    cot_small = quality("sim-small:1b", "cot", temperature=0) - quality(
        "sim-small:1b", temperature=0
    )
    cot_large = quality("sim-xl:14b", "cot", temperature=0) - quality("sim-xl:14b", temperature=0)
    assert cot_small == pytest.approx(-0.079, abs=1e-3) and cot_large == pytest.approx(
        0.111, abs=1e-3
    )
    few_small = quality("sim-small:1b", "few_shot", temperature=0) - quality(
        "sim-small:1b", temperature=0
    )
    few_large = quality("sim-xl:14b", "few_shot", temperature=0) - quality(
        "sim-xl:14b", temperature=0
    )
    assert few_small == pytest.approx(0.08) and few_large == pytest.approx(0.0)


def test_small_models_are_more_temperature_sensitive():
    def drop(model):  # relative loss from t = 0 to t = 1.2
        return 1 - quality(model, temperature=1.2) / quality(model, temperature=0.0)

    assert drop("sim-small:1b") > 2 * drop("sim-xl:14b") > 0


def test_prompts_beyond_num_ctx_are_truncated_and_quality_falls_off_a_cliff():
    full = world.true_profile(
        "sim-large:8b", GenerationParams(num_ctx=4096), "default", "summarization"
    )
    cut = world.true_profile(
        "sim-large:8b", GenerationParams(num_ctx=512), "default", "summarization"
    )
    assert full.prompt_tokens == 1560
    assert cut.quality == pytest.approx(full.quality * (512 / 1560) ** 2)
    assert cut.latency_mean_s < full.latency_mean_s


def test_the_demo_world_is_unchanged():
    demo = demo_profile("sim-large:8b", GenerationParams(temperature=0.2), "cot", "qa")
    assert demo.quality == pytest.approx(0.85)
