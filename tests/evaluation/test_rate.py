"""A run's rate and ETA: over the last minute, not since the start; durations as read."""

from __future__ import annotations

import pytest

from evaluation.run import Rate, format_duration, format_rate, progress_line


def test_the_rate_follows_the_last_minute_and_gives_the_time_left():
    rate = Rate(window_s=60.0)
    assert rate.per_s() is None and rate.eta_s(10) is None
    rate.add(0.0, 0)
    for t in range(1, 121):  # 4/s for two minutes ...
        rate.add(float(t), 4 * t)
    assert rate.per_s() == pytest.approx(4.0)
    for t in range(121, 181):  # ... then 1/s (a bigger model): a minute later, 1/s
        rate.add(float(t), 480 + (t - 120))
    assert rate.per_s() == pytest.approx(1.0)
    assert rate.eta_s(90) == pytest.approx(90.0)
    assert rate.eta_s(0) == 0.0


def test_durations_read_as_people_say_them():
    assert [
        format_duration(s) for s in (0, 40.2, 125, 600, 1860, 3 * 3600 + 300, 2 * 86400 + 4 * 3600)
    ] == [
        "0 s",
        "41 s",
        "2 min 5 s",
        "10 min",
        "31 min",
        "3 h 05 min",
        "2 d 4 h",
    ]


def test_the_progress_line_says_counts_rate_eta_and_failures():
    rate = Rate()
    rate.add(0.0, 0)
    assert progress_line(0, 800, 0, rate) == "0/800 generations (0%), ETA unknown yet"
    rate.add(10.0, 40)
    assert progress_line(40, 800, 2, rate) == (
        "40/800 generations (5%), 4.0/s, ETA 3 min 10 s, 2 failed"
    )
    assert progress_line(800, 800, 0, rate) == "800/800 generations (100%), 4.0/s"


def test_a_rate_below_one_a_second_is_given_per_minute():
    """A slow run's log said "0.0/s"."""
    rate = Rate()
    rate.add(0.0, 0)
    rate.add(60.0, 3)
    assert progress_line(3, 10, 0, rate).startswith("3/10 generations (30%), 3.0/min, ETA")
    assert [format_rate(r) for r in (12.34, 1.0, 0.99, 0.004)] == [
        "12.3/s",
        "1.0/s",
        "59.4/min",
        "0.2/min",
    ]


def test_the_eta_weighs_the_work_left_by_each_configs_time_not_the_last_minutes_count():
    """Issue 27 §6: a fast model first, a slower one second; at 50% the last minute's rate
    said 4 min and the run took 10.6. Here: 4 slots, config a 1 s per generation, config b
    (a bigger model) 3 s, as an earlier run measured; 200 generations of each."""
    from evaluation.run import WorkMix

    mix = WorkMix({"a": 200, "b": 200}, {"a": "small:1b", "b": "big:8b"}, prior_s={"b": 3.0})
    rate = Rate()
    mix.start(0.0)
    rate.add(0.0, 0)
    for t in range(1, 51):  # 4 slots busy with a: 4 stored a second, 1 s each
        for _ in range(4):
            mix.stored(float(t), "a", 1.0)
        rate.add(float(t), 4 * t)
    assert rate.eta_s(200) == pytest.approx(50.0)  # the count-based ETA: a third of the truth
    assert mix.eta_s(50.0) == pytest.approx(200 * 3.0 / 4)  # 150 s: b's 600 slot-seconds
    for t in range(51, 81):  # b under way: 4 slots, each 3 s a generation
        for _ in range(4 if t % 3 == 0 else 0):
            mix.stored(float(t), "b", 3.0)
    assert mix.remaining == {"a": 0, "b": 160}
    assert mix.eta_s(80.0) == pytest.approx(160 * 3.0 / 4, rel=0.05)
    assert mix.seconds_per_generation("b") == 3.0  # this run's own measure now


def test_a_batch_stored_at_once_is_one_entry_of_the_last_minutes_pace():
    """Issue 46: the window held a tuple for each generation of the last minute (~12 MiB of
    the run's process at 2,300 generations a second); a batch stored at once (the record
    writer's callback: one clock reading) is now one entry, with the same ETA."""
    from evaluation.run import WorkMix

    one_by_one = WorkMix({"a": 10_000}, {"a": "m"})
    batched = WorkMix({"a": 10_000}, {"a": "m"})
    for mix in (one_by_one, batched):
        mix.start(0.0)
    for t in range(1, 31):
        for i in range(300):
            one_by_one.stored(t + i / 1000, "a", 0.02)
            batched.stored(float(t), "a", 0.02)
    assert batched.eta_s(30.5) == pytest.approx(one_by_one.eta_s(30.5))
    assert len(batched._window) == 30  # not 9,000


def test_without_any_earlier_measure_a_config_takes_its_models_then_the_runs_mean():
    from evaluation.run import WorkMix

    mix = WorkMix({"a1": 2, "a2": 4, "c": 4}, {"a1": "m", "a2": "m", "c": "other"})
    mix.start(0.0)
    assert mix.eta_s(0.0) is None  # nothing measured yet
    mix.stored(1.0, "a1", 2.0)
    mix.stored(2.0, "a1", 2.0)
    assert mix.seconds_per_generation("a2") == 2.0  # its model's
    assert mix.seconds_per_generation("c") == 2.0  # the run's
    assert mix.eta_s(2.0) == pytest.approx((4 * 2.0 + 4 * 2.0) / (4.0 / 2.0))
    mix.stored(3.0, "c", None)  # a failed generation: done, no host time
    assert mix.remaining["c"] == 3


def test_earlier_runs_measures_become_the_prior_of_the_configs_they_measured():
    from types import SimpleNamespace

    from evaluation.run import work_mix
    from evaluation.spec import Config, GenerationParams, PromptTemplate

    fast = Config("small:1b", GenerationParams(temperature=0.0), PromptTemplate("default"))
    slow = Config("big:8b", GenerationParams(temperature=0.0), PromptTemplate("default"))
    items = [SimpleNamespace(config=c) for c in (fast, fast, slow)]
    measured = [
        SimpleNamespace(model="big:8b", config_hash=slow.hash, generations=30, latency_s=2.0),
        SimpleNamespace(model="big:8b", config_hash=slow.hash, generations=10, latency_s=4.0),
        SimpleNamespace(model="gone:1b", config_hash="x", generations=5, latency_s=9.0),
    ]
    mix = work_mix(items, measured)
    assert mix.remaining == {fast.hash: 2, slow.hash: 1}
    assert mix.prior_s == {slow.hash: pytest.approx(2.5)}  # weighed by generations


def test_a_models_earlier_figure_is_scaled_by_how_this_run_compares_with_earlier_runs():
    """A newcomer's sweep at num_predict 8 after a demo at 32: the second model's ETA came
    from its demo figure (0.9 s) and said 2 min 14 s for 40 s of work. The first model,
    measured in both, runs at 0.18 / 0.5 of its earlier time here, so the second is
    expected at 0.9 × 0.36, not 0.9."""
    from evaluation.run import WorkMix

    models = {"s32": "small", "b32": "big", "s8": "small", "b8": "big"}
    mix = WorkMix({"s8": 10, "b8": 144}, models, prior_s={"s32": 0.5, "b32": 0.9})
    mix.start(0.0)
    assert mix.seconds_per_generation("b8") == pytest.approx(0.9)  # nothing here to compare
    for t in range(1, 11):
        mix.stored(float(t), "s8", 0.18)
    assert mix.seconds_per_generation("b8") == pytest.approx(0.9 * 0.18 / 0.5)
    mix.stored(11.0, "b8", 0.45)
    assert mix.seconds_per_generation("b8") == pytest.approx(0.45)  # its own measure now


def test_a_request_sent_before_its_models_first_answer_does_not_set_its_configs_time():
    """The newcomer's F7: 20 smollm2 generations (2.5 s each, 1 slot), then gemma, whose
    first answer took 14 s (10 s of loading it); at 21/40 the ETA said 4 min 28 s and the
    run ended 1 min 25 s later. That first request is cold: it counts in the hosts' pace,
    not in gemma's seconds per generation."""
    from evaluation.run import WorkMix

    mix = WorkMix({"s": 20, "g": 20}, {"s": "smollm2", "g": "gemma"})
    mix.start(0.0)
    for k in range(1, 21):
        mix.stored(2.5 * k, "s", 2.5, "local")
    assert mix.first_answers_awaited() == ("gemma",)  # all that is left waits on its first
    mix.stored(64.0, "g", 14.0, "local")  # sent at 50 s, before gemma's first answer
    assert mix.first_answers_awaited() == ()
    mix.stored(68.3, "g", 4.3, "local")  # sent at 64 s: after it
    assert mix.seconds_per_generation("g") == pytest.approx(4.3)  # not (14 + 4.3) / 2
    assert mix.eta_s(68.3) == pytest.approx(18 * 4.3, rel=0.05)  # 1 slot busy: ~77 s


def test_a_models_first_answer_on_another_host_does_not_make_this_hosts_warm():
    from evaluation.run import WorkMix

    mix = WorkMix({"g": 10}, {"g": "gemma"}, prior_s={"g": 4.0})
    mix.start(0.0)
    mix.stored(14.0, "g", 14.0, "a")  # host a loaded it
    mix.stored(16.0, "g", 2.0, "a")
    mix.stored(20.0, "g", 11.0, "b")  # sent at 9 s, before b's first answer (a's came at 14 s)
    assert mix.seconds_per_generation("g") == pytest.approx(2.0)


@pytest.mark.parametrize("first_answer_s", [0.0, 6.8])
@pytest.mark.parametrize("stored_after_s", [0.25, 4.0])
def test_a_host_that_serves_fewer_at_once_than_the_lanes_send_slows_every_config_alike(
    first_answer_s, stored_after_s
):
    """The newcomer's F4: 1024 lanes on a host that answers 140 a second (its 64 slots,
    a loaded machine), m1's 4000 generations first, then m2's; earlier runs that had the
    host to themselves measured 0.24 s and 0.27 s a generation, here each waits ~7 s in
    the host's queue. At 2731/8000 the ETA said 3 s, where the rate on the same line gave
    38 s. Also where the first answer comes 6.8 s in (1024 connections opened by a busy
    client: the requests answered after it did not wait on a load) and where the writer
    stores a batch 4 s after its answers came (every answer that took over that long
    read as sent before m1's first answer)."""
    from evaluation.run import WorkMix
    from evaluation.run._rate import COLD_MARGIN_S

    mix = WorkMix({"a": 4000, "b": 4000}, {"a": "m1", "b": "m2"}, prior_s={"a": 0.24, "b": 0.27})
    rate = Rate()
    mix.start(0.0)
    rate.add(0.0, 0)
    lanes, per_s, done = 1024, 140.0, 0
    answered = [first_answer_s + (k + 1) / per_s for k in range(3000)]  # first come first
    sent = [0.0 if k < lanes else answered[k - lanes] for k in range(3000)]
    now = first_answer_s + stored_after_s
    while done < 2731:  # a batch stored every 0.25 s
        while answered[done] <= now:
            mix.stored(now, "a", answered[done] - sent[done], "fast", answered[done])
            done += 1
        rate.add(now, done)
        # Once a second has told a queue from a load (what answers within a second of the
        # first may have waited on), between the truth and the rate on the same line (which
        # counts the 6.8 s without an answer for a minute): it was 2 to 17 times less.
        truth, by_rate = (8000 - done) / per_s, rate.eta_s(8000 - done)
        if now > first_answer_s + COLD_MARGIN_S:
            assert 0.8 * min(truth, by_rate) <= mix.eta_s(now) <= 1.2 * max(truth, by_rate)
        now += 0.25
