"""The shape screen: what may reach sympy at all. An answer that could make sympy build an enormous
number or expand for seconds (power towers, big factorials, sums, 1e100000, hundreds of operators, a
big power of a variable such as `(x-a)^{6000}`) is judged by its text only, so a call stays fast
whatever the input, and the symbolic worker's CPU budget (limits.SYMBOLIC_CPU_S) is a backstop that
real answers do not reach.
"""

from __future__ import annotations

import re

from . import limits
from .cleaning import closing

_OPERATOR = re.compile(r"[-+*/^=]|\\[A-Za-z]+")
_COMMAND = re.compile(r"\\[A-Za-z]+")
_SYMBOL = re.compile(r"[A-Za-z]")
_VARIABLE = re.compile(r"[A-DF-HJ-Za-df-hj-z]")  # e and i are constants
_BIG_ARGUMENT = re.compile(r"\\(?:sin|cos|tan|cot|sec|csc|log|ln|exp)\s*\(?\s*\{?\s*(?:\d{7,}|\d+\s*\^)")
_BIG_E = re.compile(r"\d\s*[eE]\s*[+-]?\s*\d{3}")  # 1e100000: sympy builds the whole number
_ALLOWED_CHARS = re.compile(r"^[0-9A-Za-z\\+\-*/^_().,;:{}\[\]=<>|&!' ]*$")
_GROWTH = re.compile(r"!|\\(?:sum|prod|int|iint|oint|lim|binom|choose|Gamma|zeta|operatorname)(?![A-Za-z])")


def _exponents(s: str):
    """Yield (exponent, text after it) for each ^ in a LaTeX string; an unbalanced brace yields None."""
    i = s.find("^")
    while i >= 0:
        j = i + 1
        while j < len(s) and s[j] == " ":
            j += 1
        if j < len(s) and s[j] == "{":
            k = closing(s, j)
            if k < 0:
                yield None, ""
                return
            exponent, end = s[j + 1 : k], k + 1
        else:
            match = re.match(r"\\[A-Za-z]+|.", s[j:], re.DOTALL)
            exponent = match.group(0) if match else ""
            end = j + len(exponent)
        yield exponent, s[end:]
        i = s.find("^", i + 1)


def bounded(s: str) -> bool:
    """False for what could make sympy build enormous numbers (power towers, big factorials, sums,
    1e100000) or is not an answer at all; those are judged by their text only."""
    if len(s) > limits.MAX_SYMBOLIC_CHARS or "**" in s or _BIG_E.search(s) or not _ALLOWED_CHARS.match(s):
        return False
    runs = re.findall(r"\d+", s)
    if any(len(run) > limits.MAX_DIGITS for run in runs):
        return False
    if _GROWTH.search(s) and ("^" in s or any(len(run) > 3 for run in runs)):
        return False
    for exponent, rest in _exponents(s):
        if exponent is None or "^" in exponent or rest.lstrip().startswith("^"):
            return False  # unbalanced, or a tower such as 9^{9^{9}} or 2^2^2
    if _BIG_ARGUMENT.search(s):
        return False  # \sin(10^{15}): sympy reduces huge arguments slowly, and no answer is written so
    if len(_OPERATOR.findall(s)) > limits.MAX_OPERATORS:
        return False  # a long expression: sympy's simplification grows with it
    if len(set(_SYMBOL.findall(_COMMAND.sub(" ", s)))) > limits.MAX_SYMBOLS:
        return False
    return _power_growth(s) <= limits.MAX_EXPONENT and not _big_symbolic_power(s)


def _big_symbolic_power(s: str) -> bool:
    """True when a base with a variable in it has an exponent above limits.MAX_SYMBOLIC_EXPONENT:
    `(x-a)^{6000}` (sympy would expand it for seconds; numeric.identity compares such powers of rational
    expressions in-process, before this screen is asked). `2^{100}` and `\\pi^{100}` are numbers: no."""
    for i, c in enumerate(s):
        if c != "^":
            continue
        exponent = next(_exponents(s[i:]))[0] or ""
        if max([int(n) for n in re.findall(r"\d+", exponent)] or [0]) <= limits.MAX_SYMBOLIC_EXPONENT:
            continue
        j = i - 1
        while j >= 0 and s[j] == " ":
            j -= 1
        start = j
        if j >= 0 and s[j] in ")]}":
            depth = 0
            for start in range(j, -1, -1):
                depth += (s[start] in ")]}") - (s[start] in "([{")
                if depth == 0:
                    break
        else:  # one token: a letter, or a command such as \\pi
            while start > 0 and s[start - 1].isalpha():
                start -= 1
            if start > 0 and s[start - 1] == "\\":
                start -= 1
        if _VARIABLE.search(_COMMAND.sub(" ", s[max(start, 0) : j + 1])):
            return True
    return False


def _power_growth(s: str) -> int:
    """The largest product of exponents along a chain of nested powers: 2^{100} -> 100,
    ((9^{99})^{99})^{99} -> 970299, (x^2 + 1)^2 -> 4. Bounds the digits of any power sympy may expand."""
    growth = 1
    for i, c in enumerate(s):
        if c != "^":
            continue
        exponent = next(_exponents(s[i:]))[0] or ""
        value = max([int(n) for n in re.findall(r"\d+", exponent)] or [1])
        j = i - 1
        while j >= 0 and s[j] == " ":
            j -= 1
        if j >= 0 and s[j] in ")]}":
            depth, k = 0, j
            for k in range(j, -1, -1):
                depth += (s[k] in ")]}") - (s[k] in "([{")
                if depth == 0:
                    break
            value *= _power_growth(s[k + 1 : j])
        growth = max(growth, value)
    return growth
