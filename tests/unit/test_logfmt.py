"""``escape_for_log``: text from the wire as one inert line of printable ASCII, at most 200
characters; ``sink_failures_line``: the one line a command ends with when a sink failed."""

from __future__ import annotations

import pytest

from conftest import COCKPIT
from kalshi_platform.logfmt import error_line, escape_for_log, one_line, sink_failures_line


def _inert(s: str) -> bool:
    return all(" " <= ch <= "~" for ch in s)


@pytest.mark.parametrize("text, want", [
    pytest.param('{"type":"ok","id":1}', '{"type":"ok","id":1}', id="plain-json-unchanged"),
    pytest.param("a\nb\r\tc", "a\\nb\\r\\tc", id="line-breaks"),
    pytest.param("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m", id="ansi-escape"),
    pytest.param("nul\x00del\x7f", "nul\\x00del\\x7f", id="nul-and-del"),
    pytest.param("back\\slash", "back\\\\slash", id="backslash-doubled"),
    pytest.param("caf\u00e9 \u202eevil", "caf\\xe9 \\u202eevil", id="non-ascii-and-bidi"),
    pytest.param("\U0001f600", "\\U0001f600", id="astral"),
    pytest.param(b"ok\xff\xfe\x00", "ok\\xff\\xfe\\x00", id="invalid-utf8-bytes"),
    pytest.param("é".encode(), "\\xe9", id="valid-utf8-bytes-decoded"),
    pytest.param(bytearray(b"\x1b]0;title\x07"), "\\x1b]0;title\\x07", id="bytearray-osc"),
    pytest.param(memoryview(b"mv\n"), "mv\\n", id="memoryview"),
    pytest.param({"a": "\n"}, "{'a': '\\\\n'}", id="other-object-repr"),
])
def test_escapes_everything_that_is_not_printable_ascii(text, want):
    got = escape_for_log(text)
    assert got == want
    assert _inert(got)


def test_escaping_is_unambiguous():
    """The byte 0xff and the four characters ``\\xff`` must not read the same."""
    assert escape_for_log(b"\xff") != escape_for_log("\\xff")
    assert escape_for_log("\n") != escape_for_log("\\n")


def test_long_text_is_cut_to_the_limit_on_an_escape_boundary():
    line = COCKPIT.read_bytes().split(b"\n")[1]  # a real 10 kB snapshot line
    assert len(line) > 1000
    got = escape_for_log(line)
    assert len(got) == 200 and got.endswith("...")
    assert line.decode().startswith(got[:-3])
    # an escape is never split: 100 ESCs → "\x1b" × 49 + "..." (4 × 49 + 3 = 199 <= 200)
    esc = escape_for_log("\x1b" * 100)
    assert esc == "\\x1b" * 49 + "..." and len(esc) <= 200
    assert escape_for_log("x" * 200) == "x" * 200  # exactly the limit: not cut
    assert escape_for_log("x" * 201) == "x" * 197 + "..."
    assert escape_for_log("abcdef", limit=4) == "a..."
    assert escape_for_log("abc", limit=0) == ""


def test_huge_input_costs_no_more_than_its_head():
    """A 50 MB frame: only the head is looked at (the result is the same as for the head)."""
    big = b"\x00" * 50_000_000
    assert escape_for_log(big) == escape_for_log(big[:1000])
    text = "é" * 10_000_000
    assert escape_for_log(text, 50) == escape_for_log(text[:100], 50)


def test_bytes_cut_inside_a_utf8_character_never_shows_a_false_byte_escape():
    """The input is read in a byte window; a multi-byte character cut by that window must
    not come out as ``\\xNN`` escapes within the limit."""
    s = ("€" * 300).encode()  # 3 bytes each
    got = escape_for_log(s, 21)  # window 88 bytes: 29 characters and a cut one
    assert got == "\\u20ac" * 3 + "..."
    got = escape_for_log(s, 203)
    assert "\\xe2" not in got and "\\x82" not in got


def test_one_line_collapses_whitespace_and_escapes():
    assert one_line("OSError: [Errno 28]\n  No space\tleft") == "OSError: [Errno 28] No space left"
    assert one_line("bad \x1b[2J") == "bad \\x1b[2J"


def test_sink_failures_line():
    assert sink_failures_line({}) == ""
    assert (sink_failures_line({"parquet": "OSError: [Errno 28] No space left on device"})
            == "sink parquet failed: OSError: [Errno 28] No space left on device")
    two = sink_failures_line({"parquet": "OSError: x", "questdb": "WriterError: y\nmore"})
    assert two == "sink parquet failed: OSError: x; sink questdb failed: WriterError: y more"
    assert "\n" not in two


def test_error_line_names_no_class():
    import errno

    err = OSError(errno.ENOSPC, "No space left on device")
    assert error_line(err) == "[Errno 28] No space left on device"
    assert error_line(ValueError("bad\n  row")) == "bad row"
    assert error_line(RuntimeError()) == "an error without a message"
    assert "KeyError" not in error_line(KeyError("x"))
