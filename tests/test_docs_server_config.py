"""The llama.cpp config file docs/running-for-real.md shows for the real demo is the one
``tests.support.real_models`` writes (less its embedding model and its log switch), and
serves the ids the demo spec's ``models:`` names (ncsel-1: the docs named the file and
what to put in it, and showed none)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.support import real_models

DOC = REPO / "docs" / "running-for-real.md"
DEMO = REPO / "benchmarks" / "sweeps" / "demo-real.yaml"


def documented_config() -> dict:
    """The one JSON block of the doc that names models by ``model_alias``."""
    blocks = re.findall(r"^```json\n(.*?)^```", DOC.read_text(encoding="utf-8"), re.S | re.M)
    configs = [json.loads(block) for block in blocks if '"model_alias"' in block]
    assert len(configs) == 1, f"{len(configs)} llama.cpp config files in {DOC.name}"
    return configs[0]


def test_the_documented_config_is_the_rigs(monkeypatch):
    documented = documented_config()
    files = {model["model_alias"]: Path(model["model"]) for model in documented["models"]}
    monkeypatch.setattr(real_models, "smollm2_gguf", lambda: files[real_models.SMOLLM2])
    monkeypatch.setattr(real_models, "gemma_gguf", lambda: files[real_models.GEMMA])
    monkeypatch.setattr(real_models, "minilm_gguf", lambda: Path("/models/minilm.gguf"))
    rig = real_models.server_config(documented["port"], threads=2)
    chat = [model for model in rig["models"] if not model.get("embedding")]
    rig["models"] = [{k: v for k, v in model.items() if k != "verbose"} for model in chat]
    assert documented == rig
    assert [model["model_alias"] for model in documented["models"]] == yaml.safe_load(
        DEMO.read_text(encoding="utf-8")
    )["models"]


def test_llama_cpp_server_takes_it():
    settings = pytest.importorskip("llama_cpp.server.settings")
    taken = settings.ConfigFileSettings.model_validate(documented_config())
    assert taken.interrupt_requests is False and len(taken.models) == 2
