import math
import time

import numpy as np
import pandas as pd
import pytest
import sacrebleu
from rouge_score.rouge_scorer import RougeScorer
from sklearn.metrics import f1_score

from evaluation.backends.base import GenerationResult
from evaluation.errors import MetricError
from evaluation.metrics import (
    extract_label,
    get_metric,
    get_metrics,
    metric_names,
    normalize_text,
)
from evaluation.metrics._echo import answer_part, echo_share
from evaluation.metrics._labels import AMBIGUOUS
from evaluation.run._scoring import score_generations
from evaluation.suites import Case, Suite, load_suite
from tests.conftest import REPO


def case(refs=(), label=None, **metadata):
    return Case(id="c", input="q", references=tuple(refs), label=label, metadata=metadata)


def scores(name, outputs, cases, **kw):
    return get_metric(name).score(outputs, cases, **kw)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The  Cat's hat!", "cats hat"),
        ("An apple, a day.", "apple day"),
        ("“Paris”", "paris"),
        ("snake_case\tand\nTabs", "snakecase and tabs"),
        ("Theory of anything", "theory of anything"),
        ("A", ""),
        ("", ""),
    ],
)
def test_normalize_text_follows_squad(text, expected):
    assert normalize_text(text) == expected


def test_normalize_text_can_keep_articles():
    assert normalize_text("A.", drop_articles=False) == "a"


def test_exact_match_normalises_and_takes_any_reference():
    cases = [case(["Paris"]), case(["Paris"]), case(["NYC", "New York"]), case(label="Yes")]
    outputs = ["paris!", "The answer: Paris.", "new york", " yes "]
    np.testing.assert_array_equal(scores("exact_match", outputs, cases), [1, 0, 1, 1])


def test_exact_match_keeps_articles_when_reference_is_only_an_article():
    cases = [case(["A"])] * 3
    np.testing.assert_array_equal(scores("exact_match", ["a)", "B", ""], cases), [1, 0, 0])


def test_contains_matches_whole_words():
    cases = [case(["Paris"]), case(["Paris"]), case(["New York"]), case(["B"])]
    outputs = ["The answer is Paris.", "Parisian food", "I love new york city", "b"]
    np.testing.assert_array_equal(scores("contains", outputs, cases), [1, 0, 1, 1])


def test_match_metrics_are_nan_without_targets():
    for name in ("exact_match", "contains", "rouge1", "bleu", "chrf", "accuracy", "regex"):
        assert np.isnan(scores(name, ["anything"], [case()])).all(), name


def test_regex_uses_the_case_pattern():
    cases = [case(answer_regex=r"\b42\b"), case(answer_regex=r"(?i)^yes"), case(["x"])]
    values = scores("regex", ["it is 42.", "YES sir", "x"], cases)
    np.testing.assert_array_equal(values[:2], [1, 1])
    assert np.isnan(values[2])
    assert scores("regex", ["420"], [case(answer_regex=r"\b42\b")])[0] == 0


def test_regex_reports_an_invalid_pattern():
    with pytest.raises(MetricError, match="answer_regex"):
        scores("regex", ["x"], [case(answer_regex="(unclosed")])


REFS = [
    ["The cat sat on the mat.", "A cat was sitting on a mat."],
    ["Stocks fell sharply on Monday after the report."],
    ["He runs in the park every morning."],
]
OUTS = ["the cat is sitting on the mat", "Stocks dropped on Monday.", "He is running in parks"]


@pytest.mark.parametrize("rouge_type", ["rouge1", "rouge2", "rougeL"])
def test_rouge_is_rouge_score_f_measure_best_over_references(rouge_type):
    scorer = RougeScorer([rouge_type], use_stemmer=True)
    expected = [
        max(scorer.score(r, o)[rouge_type].fmeasure for r in refs)
        for o, refs in zip(OUTS, REFS, strict=True)
    ]
    values = scores(rouge_type, OUTS, [case(r) for r in REFS])
    np.testing.assert_allclose(values, expected)
    # Porter stemming: "running"/"runs" and "parks"/"park" match.
    unstemmed = RougeScorer([rouge_type]).score(REFS[2][0], OUTS[2])[rouge_type].fmeasure
    assert values[2] > unstemmed


def test_bleu_and_chrf_sentence_scores_are_sacrebleus():
    cases = [case(r) for r in REFS]
    bleu = [sacrebleu.sentence_bleu(o, r).score for o, r in zip(OUTS, REFS, strict=True)]
    chrf = [sacrebleu.sentence_chrf(o, r).score for o, r in zip(OUTS, REFS, strict=True)]
    np.testing.assert_allclose(scores("bleu", OUTS, cases), bleu)
    np.testing.assert_allclose(scores("chrf", OUTS, cases), chrf)


def test_corpus_bleu_and_chrf_handle_unequal_reference_counts():
    # A reference repeated changes neither BLEU nor chrF, so padding the one-reference
    # cases with a copy of their reference gives sacrebleu's value for equal counts.
    padded = [refs if len(refs) == 2 else refs * 2 for refs in REFS]
    streams = [list(s) for s in zip(*padded, strict=True)]
    cases = [case(r) for r in REFS]
    bleu, chrf = get_metric("bleu"), get_metric("chrf")
    assert bleu.corpus_level and chrf.corpus_level
    assert bleu.corpus_score(OUTS, cases) == pytest.approx(
        sacrebleu.corpus_bleu(OUTS, streams).score
    )
    assert chrf.corpus_score(OUTS, cases) == pytest.approx(
        sacrebleu.corpus_chrf(OUTS, streams).score
    )


def test_corpus_scores_leave_out_cases_without_references():
    cases = [case(REFS[1]), case(), case(REFS[2])]
    outputs = [OUTS[1], "no reference", OUTS[2]]
    expected = sacrebleu.corpus_bleu([OUTS[1], OUTS[2]], [[REFS[1][0], REFS[2][0]]]).score
    assert get_metric("bleu").corpus_score(outputs, cases) == pytest.approx(expected)
    assert math.isnan(get_metric("chrf").corpus_score(["x"], [case()]))


LABELS = ("positive", "negative", "neutral")


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ("Positive", "positive"),
        ("Positive. Yes, positive.", "positive"),  # one label, however often
        # several labels: no answer, whichever comes first (it used to be the leftmost)
        ("I think it is Positive, not negative", AMBIGUOUS),
        ("Negative. Definitely not positive!", AMBIGUOUS),
        ("Neutrality is hard to say", "neutrality is hard to say"),
        ("", ""),
    ],
)
def test_extract_label_reads_one_label_as_the_answer(output, expected):
    assert extract_label(output, LABELS) == expected


def test_a_list_of_labels_or_a_repeated_instruction_is_not_an_answer():
    # What the base Gemma-3-270M wrote on classify-intent: every one scored "billing"
    # under the leftmost rule (all of its correct answers).
    labels = ("billing", "technical", "account", "cancellation", "other")
    system = (
        "You sort customer-support messages by intent. Reply with exactly one label: "
        "billing, technical, account, cancellation or other. Do not explain."
    )
    gold = Case(id="c", input="I was charged twice.", system=system, label="billing")
    echo = "You sort customer-support messages by intent. Reply with exactly one label: billing"
    outputs = ["Billing, technical, account.", echo, "Billing."]
    scored = score_generations(
        pd.DataFrame({"case_id": ["c"] * 3, "output": outputs}),
        Suite("s", "1", "classification", ("accuracy",), (gold,), labels=labels),
        [get_metric("accuracy")],
    )
    assert list(scored["accuracy"]) == [0.0, 0.0, 1.0]


def test_extract_label_prefers_the_longest_label_at_a_position():
    assert extract_label("Very good, I'd say", ["good", "very good"]) == "very good"
    assert extract_label("The answer is A.", ["A", "B", "C", "D"]) == "a"


CLS_CASES = [case(label=g) for g in ["positive", "negative", "neutral", "positive", "negative"]]
CLS_OUTS = ["positive", "It is negative", "positive", "I cannot tell", "NEGATIVE!"]


def test_accuracy_compares_extracted_and_gold_labels():
    values = scores("accuracy", CLS_OUTS, CLS_CASES, labels=LABELS)
    np.testing.assert_array_equal(values, [1, 1, 0, 0, 1])
    with_unlabelled = scores("accuracy", ["x", "positive"], [case(["ref"]), case(label="positive")])
    assert np.isnan(with_unlabelled[0]) and with_unlabelled[1] == 1


def test_accuracy_and_macro_f1_say_which_labels_the_output_named():
    # The newcomer's "To change your email address on your account" scored 1 as label
    # `account` with nothing in the view to say why: one label word anywhere, and no
    # other, is the answer (the rule), and each case's detail now says so.
    labels = ["account", "billing", "technical"]
    cases = [case(label="account"), case(label="billing"), case(label="billing"), case(["r"])]
    outputs = ["To change your email address on your account", "Billing or technical", "?", "x"]
    for name in ("accuracy", "macro_f1"):
        scored = get_metric(name).score_details(outputs, cases, labels=labels)
        np.testing.assert_array_equal(scored.values[:3], [1, 0, 0])
        one, several, none, unlabelled = scored.details
        assert "names one label, «account», and no other" in one and "anywhere" in one
        assert "several labels («billing», «technical»)" in several and "a miss" in several
        assert "none of the labels" in none and "«technical»" in none
        assert unlabelled is None
    assert "anywhere in the output" in get_metric("accuracy").description


def test_accuracy_without_labels_uses_gold_and_metadata_labels():
    cases = [case(label="cat"), case(label="cat", labels=["cat", "dog"])]
    # "dog" comes first in the output and is known only from the metadata.
    np.testing.assert_array_equal(scores("accuracy", ["dog or cat", "dog or cat"], cases), [0, 0])
    np.testing.assert_array_equal(scores("accuracy", ["dog or cat"], cases[:1]), [1])


def test_macro_f1_is_sklearns_over_gold_and_known_predicted_classes():
    metric = get_metric("macro_f1")
    gold = ["positive", "negative", "neutral", "positive", "negative"]
    predicted = ["positive", "negative", "positive", "i cannot tell", "negative"]
    expected = f1_score(gold, predicted, labels=sorted(set(gold)), average="macro")
    assert metric.corpus_level and metric.score_type == "binary"
    assert metric.corpus_score(CLS_OUTS, CLS_CASES, labels=LABELS) == pytest.approx(expected)
    np.testing.assert_array_equal(
        metric.score(CLS_OUTS, CLS_CASES, labels=LABELS),
        get_metric("accuracy").score(CLS_OUTS, CLS_CASES, labels=LABELS),
    )


def test_macro_f1_counts_a_predicted_known_label_without_gold_cases():
    cases = [case(label="yes"), case(label="yes")]
    outputs = ["yes", "no"]
    expected = f1_score(
        ["yes", "yes"], outputs, labels=["no", "yes"], average="macro", zero_division=0.0
    )
    value = get_metric("macro_f1").corpus_score(outputs, cases, labels=["yes", "no"])
    assert value == pytest.approx(expected) and value < 0.5


def test_output_length_counts_words():
    values = scores("output_length", ["one two  three", "", "x\ny"], [case()] * 3)
    np.testing.assert_array_equal(values, [3, 0, 2])


def result(latency, ttft, eval_count=0, eval_ns=0):
    return GenerationResult(
        "x", "stop", latency, ttft, eval_count=eval_count, eval_duration_ns=eval_ns
    )


def test_timing_metrics_read_results_and_are_nan_where_missing():
    results = [result(1.5, 0.25, 50, 10**9), result(2.0, None)]
    cases = [case()] * 2
    np.testing.assert_array_equal(
        scores("latency_s", ["a", "b"], cases, results=results), [1.5, 2.0]
    )
    ttft = get_metric("ttft_s").score(["a", "b"], cases, results)
    tps = get_metric("tokens_per_s").score(["a", "b"], cases, results)
    assert ttft[0] == 0.25 and np.isnan(ttft[1])
    assert tps[0] == 50 and np.isnan(tps[1])
    assert np.isnan(get_metric("latency_s").score(["a"], [case()])).all()
    assert get_metric("latency_s").corpus_score(["a", "b"], cases, results) == 1.75


def test_corpus_score_of_a_per_case_metric_is_the_mean_of_scorable_values():
    cases = [case(["a1"]), case(), case(["b2"])]
    assert get_metric("exact_match").corpus_score(["a1", "x", "no"], cases) == 0.5
    assert math.isnan(get_metric("exact_match").corpus_score(["x"], [case()]))


def test_unknown_metric_names_the_known_ones():
    with pytest.raises(MetricError, match=r"unknown metric 'bleurt'.*exact_match.*rougeL"):
        get_metric("bleurt")
    with pytest.raises(MetricError, match="nope"):
        get_metrics(["bleu", "nope"])
    # a newcomer's typo got the list but no "did you mean", unlike a field's typo
    with pytest.raises(MetricError, match=r"'exact_mach'; did you mean 'exact_match'\? known"):
        get_metric("exact_mach")


def test_registry_is_complete_and_ordered():
    names = metric_names()
    assert {
        "exact_match",
        "contains",
        "regex",
        "rouge1",
        "rouge2",
        "rougeL",
        "bleu",
        "chrf",
        "accuracy",
        "macro_f1",
        "output_length",
        "latency_s",
        "ttft_s",
        "tokens_per_s",
        "pass@1",
        "tests_passed",
        "constraints",
        "retrieval_recall_at_k",
        "key_point_recall",
        "semantic_similarity",
        "echoes_prompt",
    } == set(names)
    assert [m.name for m in get_metrics(["chrf", "bleu"])] == ["chrf", "bleu"]
    corpus = {n for n in names if get_metric(n).corpus_level}
    assert corpus == {"bleu", "chrf", "macro_f1"}
    assert not get_metric("latency_s").higher_is_better


def test_mismatched_lengths_are_refused():
    with pytest.raises(MetricError, match="2 outputs for 1 cases"):
        get_metric("contains").score(["a", "b"], [case(["a"])])
    with pytest.raises(MetricError, match="1 results"):
        get_metric("latency_s").score(["a", "b"], [case()] * 2, [result(1.0, None)])


def test_match_metrics_score_8000_outputs_quickly():
    rng = np.random.default_rng(0)
    words = np.array(["alpha", "beta", "the", "gamma", "Delta!", "a", "epsilon"])
    outputs = [" ".join(rng.choice(words, 12)) for _ in range(8000)]
    cases = [case([" ".join(rng.choice(words, 2))]) for _ in range(8000)]
    for name in ("exact_match", "contains"):
        start = time.perf_counter()
        values = scores(name, outputs, cases)
        assert time.perf_counter() - start < 2.0, name
        assert values.shape == (8000,) and not np.isnan(values).any()


@pytest.mark.parametrize("name", ["bleu", "chrf"])
def test_corpus_resampler_matches_sacrebleu_on_any_resample(name):
    outputs = ["the cat sat on the mat", "a dog barked loudly", "rain fell all day", "hello"]
    cases = [
        case(refs=("the cat sat on a mat",)),
        case(refs=("the dog barked", "a dog was barking loudly")),
        case(refs=("it rained all day",)),
        case(),  # no reference: contributes nothing
    ]
    resample = get_metric(name).corpus_resampler(outputs, cases)
    corpus = sacrebleu.corpus_bleu if name == "bleu" else sacrebleu.corpus_chrf

    def direct(idx):
        chosen = [i for i in idx if cases[i].references]
        refs = [
            [cases[i].references[j] if j < len(cases[i].references) else None for i in chosen]
            for j in range(2)
        ]
        return corpus([outputs[i] for i in chosen], refs).score

    for idx in (np.arange(4), np.array([0, 0, 2]), np.array([1, 1, 1, 3])):
        assert resample(idx) == pytest.approx(direct(idx))


def test_macro_f1_resampler_matches_sklearn():
    labels = ("billing", "technical")
    outputs = ["billing", "technical issue", "billing", "no idea"]
    cases = [
        case(label="billing"),
        case(label="technical"),
        case(label="technical"),
        case(label="billing"),
    ]
    resample = get_metric("macro_f1").corpus_resampler(outputs, cases, labels=labels)
    idx = np.array([0, 2, 2, 3])
    expected = f1_score(
        ["billing", "technical", "technical", "billing"],
        ["billing", "billing", "billing", "no idea"],
        labels=["billing", "technical"],
        average="macro",
        zero_division=0.0,
    )
    assert resample(idx) == pytest.approx(expected)


def test_macro_f1_resamples_match_sklearn_on_random_data():
    # the resampler is computed with np.bincount (sklearn's call made a bootstrap of 96
    # generations take 18 s of CPU): it must stay sklearn's value on any resample
    rng = np.random.default_rng(3)
    suite_labels = ["billing", "technical", "account", "refund"]
    gold_pool = [*suite_labels, None]  # None: a case without a gold label
    answers = [*suite_labels, "no idea", "billing or refund"]
    for trial in range(40):
        n = int(rng.integers(1, 15))
        cases = [case(label=gold_pool[i]) for i in rng.integers(0, len(gold_pool), n)]
        outputs = [answers[i] for i in rng.integers(0, len(answers), n)]
        labels = suite_labels[: int(rng.integers(2, 5))] if trial % 2 else None
        resample = get_metric("macro_f1").corpus_resampler(outputs, cases, labels=labels)
        for _ in range(5):
            idx = rng.integers(0, n, n)
            chosen = [i for i in idx if cases[i].label is not None]
            if not chosen:
                assert np.isnan(resample(idx))
                continue
            gold = [cases[i].label for i in chosen]
            predicted = [extract_label(outputs[i], labels or _gold_labels(cases)) for i in chosen]
            label_set = set(labels) if labels else set(_gold_labels(cases))
            classes = sorted(set(gold) | (set(predicted) & label_set))
            expected = f1_score(gold, predicted, labels=classes, average="macro", zero_division=0.0)
            assert resample(idx) == pytest.approx(expected), trial


def _gold_labels(cases) -> list[str]:
    return sorted({c.label for c in cases if c.label is not None})


def test_every_metric_declares_the_task_types_it_serves():
    """A new metric must say which suites it can score, so a sweep pairing it with
    another task type is refused before any generation (issue 11)."""
    from evaluation.suites import TASK_TYPES

    for name in metric_names():
        declared = get_metric(name).task_types
        assert declared, f"{name} declares no task_types"
        assert set(declared) <= set(TASK_TYPES), name
    assert get_metric("accuracy").task_types == ("classification",)
    assert not get_metric("rougeL").serves("classification")


FIRST = "Apollo 11 was the first crewed mission to land on the Moon."
PASSAGE = (
    "Read the passage and answer the question with a short phrase.\n\nPassage: Apollo 11 "
    "was the first crewed mission to land on the Moon. It launched from Kennedy Space "
    "Center on 16 July 1969 aboard a Saturn V rocket.\n\nQuestion: What rocket launched "
    "Apollo 11?"
)


@pytest.mark.parametrize(
    ("output", "answer", "echoing"),
    [
        # Gemma-3-270M's real outputs on this case and its neighbour
        (
            "\n\nAnswer: Saturn V rocket\n[INST]Read the passage and answer the question "
            "with a short phrase.\n\nPass",
            "Answer: Saturn V rocket",  # the [INST] turn it starts is cut too
            True,
        ),
        (
            "\n\nAnswer: Apollo 11 was the first crewed mission to land on the Moon. It "
            "launched from Kennedy Space",
            "Answer:",
            True,
        ),
        ("The Saturn V rocket.", "The Saturn V rocket.", False),  # short copies stay
        ("a Saturn V rocket launched it in 1969", "a Saturn V rocket launched it in 1969", False),
        # a copy with a word dropped, changed or added stays one copy: its tail ("Saturn V
        # rocket") is no answer
        (
            f"{FIRST} It launched from Kennedy Space Center on 16 July 1969 aboard Saturn V.",
            ".",
            True,
        ),
        (
            f"{FIRST} It launched from Kennedy Space Center on 16 July 1969 aboard the Saturn V",
            "",
            True,
        ),
        (
            f"{FIRST} It launched from Kennedy Space Centre on 16 July 1969 aboard a big Saturn V",
            "",
            True,
        ),
        (
            "Apollo 11 was the first crewed mission to land on Moon. It launched from Kennedy",
            "",
            True,
        ),
        # quoting the one sentence that holds the answer, even with a word changed, is answering
        (
            "It launched from Kennedy Space Center on 16 July 1969 aboard Saturn V rocket.",
            None,
            False,
        ),
        (
            "It launched from Kennedy Space Centre on 16 July 1969 aboard a big Saturn V",
            None,
            False,
        ),
        # a clause retold with words changed: 8 copied, at most 7 in a row
        ("It took off from Kennedy Space Center on 16 July, on a Saturn V.", None, False),
        # restating the question, then answering, is an answer
        ("The rocket that launched Apollo 11 was the Saturn V.", None, False),
        ("What rocket launched Apollo 11? The Saturn V rocket launched Apollo 11.", None, False),
        ("Question: What rocket launched Apollo 11?\nAnswer: Saturn V", None, False),
    ],
)
def test_echoed_runs_are_cut_and_the_answer_part_kept(output, answer, echoing):
    assert answer_part(output, PASSAGE) == (output if answer is None else answer)
    assert (echo_share(output, PASSAGE) >= 0.5) is echoing


def test_a_restated_question_is_an_answer_not_an_echo():
    """SmolLM2-style: the question's own words (8 of them here), then the answer; or the
    passage's sentence that holds the answer. Only the instructions, the template or the
    input repeated at length (across a sentence's end) are echo."""
    question = "Who remained in lunar orbit while the others landed?"
    prompt = PASSAGE.rsplit("Question:", 1)[0] + "Question: " + question
    answer = "Michael Collins remained in lunar orbit while the others landed."
    assert answer_part(answer, prompt) == answer and echo_share(answer, prompt) == 0.0
    assert echo_share("The capital of France is Paris.", "What is the capital of France?") == 0
    # the passage repeated (across a sentence's end) before the same restatement is cut
    echo = f"{FIRST} It launched from Kennedy Space Center. " + answer
    assert answer_part(echo, prompt) == ". " + answer


def test_contains_and_chrf_give_no_credit_for_a_repeated_prompt():
    gold = Case(id="q", input=PASSAGE, references=("Saturn V",))
    suite = Suite("s", "1", "qa", ("contains",), (gold,))
    outputs = [
        PASSAGE,  # the whole prompt again: it holds "Saturn V"
        "Answer: Saturn V rocket\n[INST]Read the passage and answer the question with a short",
        "Kennedy Space Center",
        PASSAGE.replace("aboard a Saturn", "aboard Saturn"),  # again, a word dropped
    ]
    metrics = [get_metric(m) for m in ("contains", "chrf", "echoes_prompt")]
    frame = pd.DataFrame({"case_id": ["q"] * 4, "output": outputs})
    scored = score_generations(frame, suite, metrics)
    assert list(scored["contains"]) == [0.0, 1.0, 0.0, 0.0]
    assert scored["chrf"][0] == 0.0 < scored["chrf"][1]
    assert list(scored["echoes_prompt"]) == [1.0, 1.0, 0.0, 1.0]


@pytest.mark.parametrize(
    ("case_id", "output"),
    [  # SmolLM2-135M-Instruct's real outputs (greedy, 32 tokens, llama.cpp)
        ("qa-kestrel-ferry-1", "The crossing takes 50 minutes in calm weather."),
        ("qa-harbourview-library-4", "A member can borrow up to twelve items at a time."),
        (
            "qa-iss-2",
            "The International Space Station (ISS) has been continuously occupied since the "
            "arrival of its first crew in November 2000.",
        ),
    ],
)
def test_quoting_the_sentence_that_holds_the_answer_earns_its_credit(case_id, output):
    """The instruct model answers with the passage's sentence (8+ words copied): a quote,
    not an echo; the old rule cut it and scored these right answers 0."""
    suite = load_suite(REPO / "benchmarks" / "suites" / "qa-short.jsonl")
    frame = pd.DataFrame({"case_id": [case_id], "output": [output]})
    metrics = [get_metric(m) for m in ("contains", "echoes_prompt")]
    scored = score_generations(frame, suite, metrics)
    assert (scored["contains"][0], scored["echoes_prompt"][0]) == (1.0, 0.0)


GEMMA_INVENTED_TURN = (  # Gemma-3-270M's real output for qa-kestrel-ferry-2 (llama.cpp)
    "Answer: 6 euros.\n\nQuestion: What is the cost of a car?  [/INST]\n\n"
    "Answer: 24 euros including the driver"
)


@pytest.mark.parametrize(
    ("case_id", "output", "contains"),
    [
        # the first answer is wrong: "24 euros" is in a question-and-answer pair it invented
        ("qa-kestrel-ferry-2", GEMMA_INVENTED_TURN, 0.0),
        ("qa-kestrel-ferry-2", "Answer: 24 euros.\n\nQuestion: And a bicycle?", 1.0),
        ("qa-kestrel-ferry-2", "Answer: 6 euros.\nQ: And a car?\nA: 24 euros", 0.0),
        ("qa-kestrel-ferry-2", "Answer: 6 euros.\n<start_of_turn>user\n24 euros", 0.0),
        # SmolLM2-style plain answers keep their credit
        ("qa-kestrel-ferry-2", "Cars cost 24 euros including the driver.", 1.0),
        ("qa-kestrel-ferry-1", "The crossing takes 50 minutes in calm weather.", 1.0),
        # a restated question that opens the output is not a turn of its own
        ("qa-kestrel-ferry-2", "Question: How much for a car?\nAnswer: 24 euros", 1.0),
        # "Question:" mid-line is not a turn
        ("qa-kestrel-ferry-2", "24 euros (see the Question: car fares)", 1.0),
    ],
)
def test_a_turn_the_output_starts_of_its_own_earns_no_credit(case_id, output, contains):
    suite = load_suite(REPO / "benchmarks" / "suites" / "qa-short.jsonl")
    assert _contains_as_scored(suite, case_id, output) == contains


def _contains_as_scored(suite: Suite, case_id: str, output: str) -> float:
    """``contains`` of one output as a run scores it (on its answer part)."""
    frame = pd.DataFrame({"case_id": [case_id], "output": [output]})
    return score_generations(frame, suite, [get_metric("contains")])["contains"][0]


# ncreal's capitals suite (P2): the cases Gemma-3-270M answered with a question of its own
INVENTED_CASES = {
    "two": ("What is 2 + 2? Answer with a number.", ("4", "four")),
    "ten": ("What is 5 + 5? Answer with a number.", ("10", "ten")),
    "eg": ("What is the capital of Egypt?", ("Cairo", "Egypt")),
    "week": ("How many days are in a week?", ("7", "seven", "days")),
}


@pytest.mark.parametrize(
    ("case_id", "output", "contains"),
    [
        # Gemma-3-270M's real outputs (llama_cpp.server, num_predict 12): the next user
        # turn, holding the reference, and no answer
        ("two", "\n\nWhat is 2 + 4? Answer with a", 0.0),
        ("ten", "\n\nWhat is 5 + 10? Answer with", 0.0),
        ("eg", "\n\nWhat is the capital of Egypt?  [/INST]", 0.0),  # "Egypt" a reference
        ("week", "\n\nHow many days are in a month?  [/INST", 0.0),  # the marker cut short
        ("two", "Question: What is 2 + 4?", 0.0),
        # answers with a question mark keep their credit
        ("two", "What is 2 + 2? It is 4.", 1.0),
        ("two", "What is 2 + 2? Answer: 4", 1.0),
        ("two", "What is 2 + 2?\n4", 1.0),
        ("two", "4? I think so.", 1.0),
        ("eg", "Cairo?", 1.0),
        ("eg", "Is it Cairo?", 1.0),
        ("ten", "The answer is 10. Do you want another sum?", 1.0),
    ],
)
def test_an_output_that_only_asks_a_question_of_its_own_earns_no_credit(case_id, output, contains):
    text, refs = INVENTED_CASES[case_id]
    case = Case(id=case_id, input=text, references=refs, system="Answer in a few words.")
    suite = Suite("s", "1", "qa", ("contains",), (case,))
    assert _contains_as_scored(suite, case_id, output) == contains


def test_the_answer_part_ends_where_the_output_starts_a_turn():
    assert answer_part(GEMMA_INVENTED_TURN, PASSAGE) == "Answer: 6 euros."
    # an answer, then a repeated instruction opening an [INST] turn: the answer stays
    echoed = "Answer: Saturn V rocket\n[INST]Read the passage and answer the question with a short"
    assert answer_part(echoed, PASSAGE) == "Answer: Saturn V rocket"
    # a repeated prompt (its question included), then the answer: the echo goes, the
    # "Question:" line after it is no turn of the output's own, and the answer stays
    echo = PASSAGE.replace("Question:", "\nQuestion:") + "\nAnswer: Saturn V"
    assert answer_part(echo, PASSAGE).endswith("Answer: Saturn V")


def test_echoing_the_prompt_has_a_direction_and_gets_a_verdict():
    """It was descriptive ("no verdict on echoes_prompt: neither higher nor lower is
    better") although echoing is plainly bad."""
    from evaluation.compare._comparison import direction
    from evaluation.statistics import compare_many
    from tests.evaluation.statistics._rows import long_rows

    assert direction("echoes_prompt") is False and direction("output_length") is None
    rows = long_rows({"echo": [1.0] * 18 + [0.0] * 2, "answer": [0.0] * 20}, metric="echoes_prompt")
    multi = compare_many(
        rows, "echoes_prompt", score_type="binary", higher_is_better=direction("echoes_prompt")
    )
    assert multi.winner == "answer", multi.verdict


def test_the_direction_table_names_every_built_in_metric_and_no_other():
    """`show` ranks by a built-in metric's direction read from a table, without loading the
    metrics: the registry declares each one's from that table, and it names no other."""
    from evaluation.metrics._directions import HIGHER_IS_BETTER
    from evaluation.metrics._registry import _BY_NAME

    assert set(HIGHER_IS_BETTER) == set(_BY_NAME)
    assert {n: m.higher_is_better for n, m in _BY_NAME.items()} == HIGHER_IS_BETTER
    assert not HIGHER_IS_BETTER["latency_s"] and HIGHER_IS_BETTER["exact_match"]


def test_a_prompt_is_analysed_once_for_every_output_to_it(monkeypatch):
    """Every config and sample answers the same case: its prompt's words, question and
    sentences are found once, not once an output (a 1,500-word prompt cost ~2 ms of CPU
    a generation); the cache keeps at most PROMPT_CACHE_WORDS words, and a prompt past
    that is analysed each time with the same answer; scoring's end forgets them."""
    from evaluation.metrics import _echo

    calls = []
    real = _echo._sentence_of_words
    monkeypatch.setattr(_echo, "_sentence_of_words", lambda p: calls.append(p) or real(p))
    monkeypatch.setattr(_echo, "_prompt_cache", {}, raising=False)
    monkeypatch.setattr(_echo, "_prompt_cache_words", [0], raising=False)
    outputs = [GEMMA_INVENTED_TURN, "Answer: Saturn V rocket", PASSAGE, ""] * 4
    first = [answer_part(o, PASSAGE) for o in outputs]
    assert calls == [PASSAGE]
    monkeypatch.setattr(_echo, "PROMPT_CACHE_WORDS", 5)  # full: nothing more kept
    prompt = PASSAGE + " Where?"
    assert [answer_part(o, prompt) for o in outputs[:2]] == [
        answer_part(o, prompt) for o in outputs[:2]
    ]
    assert calls.count(prompt) >= 4 and prompt not in _echo._prompt_cache
    assert [answer_part(o, PASSAGE) for o in outputs] == first and calls.count(PASSAGE) == 1
    _echo.forget_prompts()  # a run's scoring done (tasks/results.score): memory back
    assert _echo._prompt_cache == {} and _echo._prompt_cache_words == [0]
