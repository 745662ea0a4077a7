"""Plain-text math -> LaTeX: answers written the way calculators, programs and models write them.

    sqrt(11+6*sqrt(2)) -> \\sqrt{11+6 \\cdot \\sqrt{2}}      exp(2x) -> e^{2x}      2*cos(x)^2 -> 2 \\cdot \\cos(x)^2
    abs(x) -> |x|      ln(8) -> \\ln(8)      x**2 -> x^{2}      e^(x+1) -> e^{x+1}      2pi -> 2\\pi      inf -> \\infty

Only the names in FUNCTIONS, when they are followed by "(", become commands; the text is rewritten,
never evaluated. A name glued to a letter before it (`xsin(`) or written with its backslash is left as
it is, and an unbalanced parenthesis leaves the whole answer unchanged. The rewritten answer then goes
through the same cleaning and judging as one written in LaTeX.
"""

from __future__ import annotations

import re

# plain name -> what it becomes; "{}" marks the argument. A name in LaTeX's own set keeps its parentheses.
FUNCTIONS = {
    "sqrt": "\\sqrt{{{}}}",
    "cbrt": "\\sqrt[3]{{{}}}",
    "exp": "e^{{{}}}",
    "abs": "|{}|",
    "ln": "\\ln({})",
    "log": "\\log({})",
    "sin": "\\sin({})",
    "cos": "\\cos({})",
    "tan": "\\tan({})",
    "cot": "\\cot({})",
    "sec": "\\sec({})",
    "csc": "\\csc({})",
    "arcsin": "\\arcsin({})",
    "arccos": "\\arccos({})",
    "arctan": "\\arctan({})",
    "asin": "\\arcsin({})",
    "acos": "\\arccos({})",
    "atan": "\\arctan({})",
    "sinh": "\\sinh({})",
    "cosh": "\\cosh({})",
    "tanh": "\\tanh({})",
}
_CALL = re.compile(r"(?<![\\A-Za-z])(" + "|".join(sorted(FUNCTIONS, key=len, reverse=True)) + r")\s*\(|\\(sqrt)\s*\(")
# sin^2(x), ln 2, sin x: a LaTeX function's name without its backslash, before a power, a space or a digit
_BARE_NAME = re.compile(
    r"(?<![\\A-Za-z])(arcsin|arccos|arctan|sinh|cosh|tanh|sin|cos|tan|cot|sec|csc|ln|log)(?=\^|\s*[\dA-Za-z(])"
)
_PI = re.compile(r"(?<![\\A-Za-z])pi(?![A-Za-z])")
_INFINITY = re.compile(r"(?<![\\A-Za-z])(?:infinity|Infinity|inf|oo)(?![A-Za-z])")
_POWER_PAREN = re.compile(r"\^\s*\(")
_TRIGGER = re.compile(
    r"\*|\^\s*\(|\\sqrt\s*\(|(?<![\\A-Za-z])(?:[a-z]{2,6}\s*[\^(\d ]|pi(?![A-Za-z])|inf|oo(?![A-Za-z])|Infinity)"
)


def _matching(s: str, i: int) -> int:
    """Index of the parenthesis that closes the one at s[i], or -1."""
    depth = 0
    for j in range(i, len(s)):
        depth += (s[j] == "(") - (s[j] == ")")
        if depth == 0:
            return j
    return -1


def to_latex(s: str) -> str:
    """s with its plain-text functions, powers, products and constants written as LaTeX; s itself when
    it has none of them or a parenthesis that never closes."""
    if not _TRIGGER.search(s):
        return s
    converted = _calls(s)
    if converted is None:
        return s
    s = _BARE_NAME.sub(r"\\\1 ", converted).replace("**", "^")
    while True:  # x^(n+1) -> x^{n+1}: LaTeX reads only one token after ^
        match = _POWER_PAREN.search(s)
        if not match:
            break
        end = _matching(s, match.end() - 1)
        if end < 0:
            return s
        s = s[: match.start()] + "^{" + s[match.end() : end] + "}" + s[end + 1 :]
    s = s.replace("*", " \\cdot ")
    s = _PI.sub(r"\\pi ", s)
    return _INFINITY.sub(r"\\infty ", s).strip()


def _calls(s: str) -> str | None:
    """Every `name(argument)` of FUNCTIONS rewritten, innermost arguments included; None when a
    parenthesis never closes."""
    out, i = [], 0
    while True:
        match = _CALL.search(s, i)
        if not match:
            out.append(s[i:])
            return "".join(out)
        end = _matching(s, match.end() - 1)
        if end < 0:
            return None
        argument = _calls(s[match.end() : end])
        if argument is None:
            return None
        latex = FUNCTIONS[match.group(1) or match.group(2)].format(argument.strip())
        if latex.startswith("e^") and s[end + 1 :].lstrip().startswith("^"):
            latex = f"({latex})"  # exp(x)^2 is (e^{x})^2, not the tower e^{x}^2
        out.append(s[i : match.start()] + latex)
        i = end + 1
