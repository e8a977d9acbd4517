"""Text from outside shown on a terminal with its control characters escaped (newcomer
S5: a model server's error body cleared the screen, set the window's title and printed
a green "all good, 0 failed" through the run's failure summary, `show` and `plan
--probe`; model names with ESC sequences came from the spec and the server's list)."""

from __future__ import annotations

import json

from evaluation.backends._http import reply_excerpt
from evaluation.printable import control_character, printable
from evaluation.run._doctor import Check, DoctorReport

HOSTILE = "bad\x1b[2J\x1b[H\x1b]0;PWNED\x07\x1b[32m all good\x1b[0m\r\x1b[Kx\x9b2J\x7f"


def test_control_characters_but_line_breaks_and_tabs_are_escaped() -> None:
    assert printable(HOSTILE) == (
        "bad\\x1b[2J\\x1b[H\\x1b]0;PWNED\\x07\\x1b[32m all good\\x1b[0m\\r\\x1b[Kx\\x9b2J\\x7f"
    )
    assert printable("two\nlines\tand café ✓") == "two\nlines\tand café ✓"
    assert control_character("gemma3\x1b") == "\\x1b"
    assert control_character("a\tb") == "\\t"
    assert control_character("llama3.2:3b") is None


def test_a_servers_error_reply_is_stored_and_shown_escaped() -> None:
    for body in (HOSTILE, json.dumps({"error": {"message": HOSTILE}})):  # JSON: \u001b
        excerpt = reply_excerpt(body)
        assert "\x1b" not in excerpt and "\x07" not in excerpt and "\x9b" not in excerpt
        assert "\\x1b[2J" in excerpt
    long = reply_excerpt("x" * 300 + "\x1b[2J")  # cut to one line: escaped too
    assert "\x1b" not in long


def test_the_doctors_report_shows_a_hosts_model_names_escaped() -> None:
    report = DoctorReport(
        (Check("host h", "fail", "2 models: \x1b]0;PWNED\x07evil, ok; does not have 'a'"),)
    )
    for text in (report.render_text(), report.one_line()):
        assert "\x1b" not in text and "\\x1b]0;PWNED\\x07evil" in text
