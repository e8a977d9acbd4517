"""A fixed seed with several samples at temperature > 0, on a real model: each sample has
its own seed (derived from the config's and the sample index, stored), so the samples
differ, and a rerun repeats every one of them byte for byte."""

from __future__ import annotations

import pytest

from evaluation.spec import sample_seed
from tests.real_models.conftest import SUITES, run_sweep, stored, write_spec
from tests.support.real_models import SMOLLM2

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]


@pytest.mark.usefixtures("prefect_harness")
def test_seeded_samples_differ_and_a_rerun_repeats_them(real_server, tmp_path, database_url):
    outputs = []
    for name in ("seeded-a", "seeded-b"):  # two experiments: the second is a full rerun
        spec = write_spec(
            tmp_path,
            real_server,
            SUITES / "qa-short.jsonl",
            name=name,
            models=[SMOLLM2],
            grid={"temperature": [1.0], "seed": [7], "num_predict": [12]},
            samples_per_case=3,
            metrics=["contains"],
        )
        assert run_sweep(spec, database_url, limit=1)["generated"] == 3
        generations, _ = stored(database_url, name)
        generations = generations.sort_values("sample_index")
        assert list(generations["sample_seed"]) == [sample_seed(7, i) for i in range(3)]
        outputs.append(list(generations["output"]))
    assert len(set(outputs[0])) == 3  # one sample each, not three copies of one
    assert outputs[1] == outputs[0]  # reproducible: the same seeds, the same samples
