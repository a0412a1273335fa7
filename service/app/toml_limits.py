"""Limits on a weights document, checked by a lexical scan before it is parsed.

tomllib's cost is not bounded by the size of its input alone: arrays nested 500 deep
raise RecursionError (an uncaught error, so INTERNAL), and a dotted key ``a.a.a…`` of
40 KB took 9 s of CPU under the GIL and left 1.3 GB of RSS behind (each part of the key
copies the key so far). A real weights document is a few kilobytes, with keys of three
or four parts and inline tables one or two deep, so generous bounds on exactly these
shapes refuse an attack before any parsing and never a real document.

The scan knows TOML's four kinds of string and its comments, so brackets and dots
inside them do not count. Where it could disagree with tomllib it is only on text that
tomllib refuses before reaching what follows (an unterminated string, say); and
service/app/weights.py turns any failure of the parser into INVALID_ARGUMENT as well.
"""

from __future__ import annotations

import re

MAX_BYTES = 64 * 1024  # the whole document, in UTF-8
MAX_LINE_CHARACTERS = 4096
MAX_DEPTH = 16  # arrays and inline tables (and table headers' brackets) open at once
MAX_KEY_DOTS = 16  # dots in a dotted key (counted between two of = , [ ] { } newline)

# What the scan stops at: brackets, separators, dots, and the starts of strings and comments.
_NEXT = re.compile(r"[\[\]{}=,\n.\"'#]")
# The rest of a string from just after its opening quote(s), to just after its closing
# one(s), or to where tomllib would give up on it. Every alternative consumes a character
# the others cannot, so matching never backtracks: linear in the string's length.
_BASIC_REST = re.compile(r'(?:[^\\"\n]|\\.)*"?')
_MULTILINE_BASIC_REST = re.compile(r'(?:[^\\"]|\\.|"(?!""))*(?:"{3,5})?', re.DOTALL)
_LITERAL_REST = re.compile(r"[^'\n]*'?")


def _string_end(text: str, start: int, quote: str) -> int:
    """Where the string whose first quote is at ``start - 1`` ends (just after it)."""
    if text.startswith(quote * 2, start):  # a multi-line string (or an empty one)
        if quote == '"':
            match = _MULTILINE_BASIC_REST.match(text, start + 2)
            assert match is not None  # (the pattern matches the empty string)
            return match.end()
        close = text.find("'''", start + 2)
        if close < 0:
            return len(text)
        end = close + 3
        while end < len(text) and end - close < 5 and text[end] == "'":
            end += 1  # (up to two quotes may end the content itself)
        return end
    match = (_BASIC_REST if quote == '"' else _LITERAL_REST).match(text, start)
    assert match is not None
    return match.end()


def toml_shape_problem(text: str) -> str | None:
    """What makes ``text`` too large or too deep to parse safely; None when nothing does."""
    size = len(text.encode("utf-8"))
    if size > MAX_BYTES:
        return f"must be at most {MAX_BYTES} bytes (got {size})"
    depth = dots = 0
    line = 1
    position = 0
    while (found := _NEXT.search(text, position)) is not None:
        char, position = found.group(), found.end()
        if char == ".":
            dots += 1
            if dots > MAX_KEY_DOTS:
                return f"line {line}: a dotted key may have at most {MAX_KEY_DOTS} dots"
            continue
        if char in "\"'":
            end = _string_end(text, position, char)
            line += text.count("\n", position, end)
            position = end
            continue
        if char == "#":
            newline = text.find("\n", position)
            position = len(text) if newline < 0 else newline
            continue
        dots = 0
        if char == "\n":
            line += 1
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return (
                    f"line {line}: arrays and inline tables may be nested at most {MAX_DEPTH} deep"
                )
        elif char in "]}":
            depth = max(0, depth - 1)
    for number, content in enumerate(text.splitlines(), start=1):
        if len(content) > MAX_LINE_CHARACTERS:
            return f"line {number}: lines may be at most {MAX_LINE_CHARACTERS} characters long"
    return None
