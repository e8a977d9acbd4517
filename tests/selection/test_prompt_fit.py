"""A prompt that does not fit num_ctx is a fact read from the stored token counts."""

import dataclasses
import io
import json

import numpy as np
import pandas as pd
import pytest

from selection._codec import decode, encode
from selection._notes import prompt_note
from selection.frame import TrainingDataError, validate_training_frame
from selection.prompt_fit import overflow, prompt_lengths
from selection.recommender import recommend_from_model

from .conftest import synthetic_frame


def _rows(*rows: tuple) -> pd.DataFrame:
    """(model, template, num_ctx, input_chars, prompt_tokens) generations on qa."""
    columns = ("model", "template", "num_ctx", "input_chars", "prompt_tokens")
    frame = pd.DataFrame(rows, columns=columns)
    return frame.assign(template_text=frame["template"] + ": {input}", task_type="qa")


def _candidates(*rows: tuple) -> pd.DataFrame:
    """(model, template, num_ctx) candidates."""
    frame = pd.DataFrame(rows, columns=("model", "template", "num_ctx"))
    return frame.assign(template_text=frame["template"] + ": {input}")


def test_a_prompt_measured_longer_than_num_ctx_on_a_shorter_input_does_not_fit():
    lengths = prompt_lengths(
        _rows(
            ("m", "few_shot", 4096, 1000, 700),  # the whole prompt: 700 tokens
            ("m", "few_shot", 4096, 3000, 1900),
            ("m", "few_shot", 512, 3000, 512),  # cut by the server at its num_ctx
            ("m", "plain", 4096, 3000, 400),
        )
    )
    candidates = _candidates(
        ("m", "few_shot", 512),
        ("m", "few_shot", 2048),
        ("m", "plain", 512),
        ("m", "few_shot", None),
    )
    found = overflow(lengths, candidates, "qa", 1500)
    assert found.iloc[0] == 700  # a case of 1000 chars took 700 tokens > 512
    assert found.iloc[1:].isna().all()  # fits 2048; plain fits; num_ctx unset: no fact
    assert overflow(lengths, candidates, "qa", 3000).iloc[1] == pytest.approx(np.nan, nan_ok=True)
    assert overflow(lengths, candidates, "qa", 900).isna().all()  # no stored case that short
    assert overflow(lengths, candidates, "summarization", 5000).isna().all()


def test_counts_cut_at_num_ctx_are_lower_bounds_only():
    # Only generations at num_ctx 512, every one cut: their 512 says "at least 512".
    lengths = prompt_lengths(_rows(("m", "t", 512, 2000, 512), ("m", "t", 512, 2500, 512)))
    found = overflow(lengths, _candidates(("m", "t", 512), ("m", "t", 256)), "qa", 3000)
    assert np.isnan(found.iloc[0]) and found.iloc[1] == 512


def test_another_model_tokenizes_its_own_prompts():
    lengths = prompt_lengths(_rows(("a", "t", 4096, 1000, 900)))
    assert overflow(lengths, _candidates(("b", "t", 512)), "qa", 2000).isna().all()


def test_the_staircase_keeps_only_rises():
    lengths = prompt_lengths(
        _rows(
            ("m", "t", 4096, 100, 50),
            ("m", "t", 4096, 200, 40),
            ("m", "t", 4096, 300, 90),
            ("m", "t", 4096, 300, 80),
        )
    )
    assert lengths[["input_chars", "prompt_tokens"]].values.tolist() == [[100, 50], [300, 90]]


def test_the_frame_takes_prompt_tokens_as_optional_counts():
    frame = synthetic_frame(cases=2)
    assert validate_training_frame(frame)["prompt_tokens"].isna().all()
    with pytest.raises(TrainingDataError, match="prompt_tokens"):
        validate_training_frame(frame.assign(prompt_tokens=-1))


@pytest.fixture
def cut_model(trained):
    """The trained selector with big:8b's configs at num_ctx 512, and stored qa prompts
    of the "careful" template on big:8b of 900 tokens from 300 input characters."""
    configs = trained.model.configs.copy()
    configs.loc[configs["model"] == "big:8b", "num_ctx"] = 512.0
    text = configs.loc[configs["template"] == "careful", "template_text"].iloc[0]
    lengths = pd.DataFrame(
        {
            "model": ["big:8b"],
            "template": ["careful"],
            "template_text": [text],
            "task_type": ["qa"],
            "input_chars": [300.0],
            "prompt_tokens": [900.0],
        }
    )
    return dataclasses.replace(trained.model, configs=configs, prompt_lengths=lengths)


def test_a_pick_whose_prompt_does_not_fit_says_so(trained, cut_model):
    answer = recommend_from_model(cut_model, "qa", input_chars=400)
    assert (answer.choice.model, answer.choice.template) == ("big:8b", "careful")
    assert answer.choice.config_hash == recommend_from_model(trained.model, "qa").choice.config_hash
    (said,) = [n for n in answer.notes if n.startswith("its prompt does not fit")]
    assert "num_ctx 512 for inputs of 400 characters" in said and "took 900 prompt tokens" in said
    assert "its measured quality includes the cases the server cut" in said
    # Inputs shorter than every stored case: nothing says the prompt does not fit.
    short = recommend_from_model(cut_model, "qa", input_chars=200)
    assert not any(n.startswith("its prompt does not fit") for n in short.notes)
    # A pick never measured on the task type: its quality never saw the cut.
    row = {"prompt_overflow": 900.0, "num_ctx": 512.0, "model": "m", "template": "t"}
    assert "only predicted" in prompt_note(pd.Series({**row, "measured": False}), 400)
    assert prompt_note(pd.Series({**row, "prompt_overflow": np.nan}), 400) is None


def test_prompt_lengths_survive_storing_and_older_blobs_read_as_empty(cut_model):
    assert decode(encode(cut_model)).prompt_lengths.equals(cut_model.prompt_lengths)
    with np.load(io.BytesIO(encode(cut_model)), allow_pickle=False) as archive:
        arrays = {k: archive[k] for k in archive.files if not k.startswith("prompt_lengths/")}
    meta = json.loads(arrays["meta"].tobytes().decode())
    del meta["frames"]["prompt_lengths"]  # as stored before the frame was kept
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    assert decode(buffer.getvalue()).prompt_lengths.empty
