"""Words the Core Rule Set's own regexes look for, read from the rule files.

Rule 932150 (direct Unix command execution) needs a command word, then whitespace or a
separator, at the start of a value. The prefilter must let through any value that could
match it; rather than keep a copy of the command list that would drift from the rules,
it enumerates the rule's command alternation (a finite set of words once the quote and
backslash evasions between letters are taken out) when the rules load. A rule file it
cannot read that way gives ``None``, and the prefilter then passes every value with
whitespace to CRS: slower, never blind.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

# The standard library's regex parser (``sre_parse`` is its deprecated public alias).
sre_parse: Any = importlib.import_module("re._parser")
sre: Any = importlib.import_module("re._constants")

_EVASION = "[\\\\\\\\'\\\"]*"  # [\\'"]* between letters, as written in the rule file
_MAX_WORDS = 5_000


def unix_commands(rules_dir: Path, rule_id: int = 932150) -> frozenset[str] | None:
    """The lowercase command words of rule 932150, or None if it cannot be read."""
    path = next(iter(sorted(rules_dir.glob("REQUEST-932-*.conf"))), None)
    if path is None:
        return None
    for rule in path.read_text(encoding="utf-8", errors="replace").split("\nSecRule "):
        if f"id:{rule_id}," not in rule:
            continue
        found = re.search(r'"@rx (.*?)" \\\n', rule, re.DOTALL)
        if found is None:
            return None
        pattern = found.group(1).replace(_EVASION, "")
        start = pattern.find(")?(?:")  # the optional path prefix ends, the commands begin
        if start < 0:
            return None
        words = finite_words(_group_at(pattern, start + 2))
        return frozenset(w.lower() for w in words) if words else None
    return None


def finite_words(pattern: str) -> frozenset[str] | None:
    """The words an alternation of literals matches, each cut at its first element that
    is not a literal, a small character class or an optional part; None if a class is
    wide or the words are too many.

    >>> sorted(finite_words(r"(?:l(?:s(?:of)?|ess)|z?cat|jobs\\s+-x)"))
    ['cat', 'jobs', 'less', 'ls', 'lsof', 'zcat']
    """
    try:
        parsed = sre_parse.parse(pattern)
        words = _expand(list(parsed))
    except (re.error, _NotWordsError):
        return None
    return frozenset(words) if words is not None else None


class _NotWordsError(Exception):
    pass


def _expand(items: list[tuple[Any, Any]]) -> list[str]:
    out = [""]
    for op, arg in items:
        if op is sre.LITERAL:
            choices = [chr(arg)]
        elif op is sre.SUBPATTERN:
            choices = _expand(list(arg[3]))
        elif op is sre.BRANCH:
            choices = [w for branch in arg[1] for w in _expand(list(branch))]
        elif op is sre.IN:
            choices = _class(arg)
        elif op in (sre.MAX_REPEAT, sre.MIN_REPEAT) and arg[:2] == (0, 1):
            choices = ["", *_expand(list(arg[2]))]
        else:  # \s+, \w, ., anchors: the word is cut here ("jobs\s+-x" gives "jobs")
            return out
        out = [prefix + choice for prefix in out for choice in choices]
        if len(out) > _MAX_WORDS:
            raise _NotWordsError
    return out


def _class(items: list[tuple[Any, Any]]) -> list[str]:
    chars: list[str] = []
    for op, arg in items:
        if op is sre.LITERAL:
            chars.append(chr(arg))
        elif op is sre.RANGE and arg[1] - arg[0] < 16:
            chars.extend(chr(c) for c in range(arg[0], arg[1] + 1))
        else:
            raise _NotWordsError
    return chars


def _group_at(pattern: str, start: int) -> str:
    """The parenthesised group that opens at ``start``."""
    depth = 0
    escaped = False
    for index in range(start, len(pattern)):
        char = pattern[index]
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                return pattern[start : index + 1]
    return pattern[start:]
