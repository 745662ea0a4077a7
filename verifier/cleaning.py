"""Cleaning: what can be removed from an answer without changing its value, from closed lists.

`$...$`, `\\boxed{}` (several boxes are several answers: a list), spacing, `\\left`/`\\right`, `\\dfrac`,
`bmatrix`, `{,}`, a `\\text{}` around the whole answer, a full stop, markdown bold, what follows
`\\approx`, a lead-in from a closed list at the start ("The answer is"), and the units in UNITS. A
number followed by words outside UNITS keeps them as its unit ("word:apple"), unless one of them is in
VALUE_WORDS. Never "any trailing word": `6 - 5i`, `2k` and `3+2x` keep their letters. Degrees inside a
trigonometric function become radians here (`\\sin(150^\\circ)`), before the unit is looked for. Plain
text is rewritten as LaTeX first (plaintext.py). A new unit or decoration is added here and nowhere else.
"""

from __future__ import annotations

import re

from .numeric import number
from .plaintext import to_latex


# ----------------------------------------------------------------------------- units
def _unit_words(*words: str) -> str:
    return "|".join(words)


# Canonical unit -> the ways it is written (regex alternatives; plurals listed). Only these are removed.
# Single letters (m, s, g, h, L) count as units only inside \text{}, \mbox{} or \mathrm{}: bare, they
# are variables. A power after the unit (^2, ^{3}) is part of it; "square"/"cubic" give the same.
UNITS = {
    "%": r"\\%|%|percentage(?:\s+points?)?|percent|per\s*cent|pct",
    "deg": r"\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\circ|\\degree|degrees?|deg",
    "$": r"\\\$|dollars?|USD",
    "cent": r"cents?|\\cent|\\textcent",
    "rad": r"radians?|rad",
    "mm": _unit_words("mm", "millimet(?:er|re)s?"),
    "cm": _unit_words("cm", "centimet(?:er|re)s?"),
    "m": _unit_words("met(?:er|re)s?"),
    "km": _unit_words("km", "kilomet(?:er|re)s?"),
    "in": _unit_words("inch(?:es)?"),
    "ft": _unit_words("ft", "feet", "foot"),
    "yd": _unit_words("yd", "yards?"),
    "mi": _unit_words("miles?"),
    "g": _unit_words("grams?"),
    "kg": _unit_words("kg", "kilograms?"),
    "mg": _unit_words("mg", "milligrams?"),
    "lb": _unit_words("lbs?", "pounds?"),
    "oz": _unit_words("oz", "ounces?"),
    "s": _unit_words("sec", "secs", "seconds?"),
    "min": _unit_words("min", "mins", "minutes?"),
    "h": _unit_words("hr", "hrs", "hours?"),
    "day": _unit_words("days?"),
    "week": _unit_words("weeks?"),
    "month": _unit_words("months?"),
    "year": _unit_words("years?", "yrs?"),
    "L": _unit_words("liters?", "litres?"),
    "mL": _unit_words("ml", "mL", "millilit(?:er|re)s?"),
    "gal": _unit_words("gal", "gallons?"),
    "mph": _unit_words("mph", "miles per hour"),
    "km/h": _unit_words("km/h", "kph", "kilomet(?:er|re)s per hour"),
    "m/s": _unit_words("m/s", "met(?:er|re)s per second"),
    "unit": _unit_words("units?"),
}
_TEXT_ONLY_UNITS = {"m": "m", "s": "s", "g": "g", "h": "h", "L": "L", "in": "in"}  # only inside \text{}
_POWER = r"(?:\s*\^\s*\{?\s*(?P<power>[23])\s*\}?)?"
_UNIT_NAME = {}


def _unit_alternation(text_only: bool) -> str:
    parts = []
    for i, (canonical, pattern) in enumerate(UNITS.items()):
        alternatives = pattern
        if text_only and canonical in _TEXT_ONLY_UNITS:
            alternatives += "|" + re.escape(_TEXT_ONLY_UNITS[canonical])
        _UNIT_NAME[f"u{i}"] = canonical
        parts.append(f"(?P<u{i}>{alternatives})")
    return "|".join(parts)


_SQUARE = r"(?:(?P<square>square|sq\.?)\s+|(?P<cubic>cubic|cu\.?)\s+)?"
# "\text{ cm}^2", "\mbox{ square inches}", "\mathrm{m}"
_UNIT_IN_TEXT = re.compile(
    rf"\\(?:text|mbox|mathrm|textrm|textbf|textnormal|rm)\s*\{{\s*{_SQUARE}(?:{_unit_alternation(True)})\s*\.?\s*\}}{_POWER}\s*$"
)
# bare "cm^2", "dollars", "\%", "^\circ"; a unit written in letters must follow a digit, space, brace or parenthesis
_UNIT_BARE = re.compile(rf"{_SQUARE}(?:{_unit_alternation(False)}){_POWER}\s*$")
_CURRENCY_PREFIX = re.compile(r"^(?:\\\$|USD\s*)\s*(?=[\d.\-+\\])")


def strip_unit(s: str) -> tuple[str, str | None]:
    """(answer without its trailing unit, canonical unit with power) - or (s, None) without a unit."""
    unit = None
    match = _CURRENCY_PREFIX.match(s)
    if match:
        s, unit = s[match.end() :], "$"
    last = s[-1:]
    patterns = [_UNIT_IN_TEXT] if "\\" in s else []
    if last.isalpha() or last in "%}$." or (last in "23" and "^" in s):
        patterns.append(_UNIT_BARE)
    for pattern in patterns:
        match = pattern.search(s)
        if not match or match.start() == 0:
            continue  # no unit, or nothing but a unit
        if pattern is _UNIT_BARE and match.group(0)[0].isalpha() and s[match.start() - 1] not in "0123456789 })":
            continue  # "2k", "5x cm"... letters glued to a variable are not a unit
        rest = s[: match.start()].strip()
        if not rest or rest.endswith(("^", "_", "\\")):
            continue
        groups = match.groupdict()
        name = next(_UNIT_NAME[k] for k, v in groups.items() if k.startswith("u") and v is not None)
        power = groups.get("power") or ("2" if groups.get("square") else "3" if groups.get("cubic") else None)
        found = f"{name}^{power}" if power else name
        if unit is not None and unit != found:
            return s, "conflict"  # "\$5 cm": two different units
        return rest, found
    rest, word = _unit_word(s)
    if word is None:
        return s, unit
    return rest, unit or word  # "\\$12 \\text{ each}": the currency is the unit, the word describes it


# A number followed by a word the closed list lacks (`12 \\text{ apples}`, `12 apples`) reads as that number
# with that word as its unit, unless a word changes, qualifies or denies the value: these never do.
VALUE_WORDS = frozenset(
    """not no none nor or and but if is are was were be equals equal wrong incorrect false true maybe
    perhaps possibly probably about around approximately approx roughly nearly almost over under above
    below at least most less more fewer than to from between times plus minus negative squared cubed
    power root roots sqrt factorial mod modulo base pi half halves third thirds quarter quarters fourth
    fourths fifth fifths sixth sixths seventh sevenths eighth eighths ninth ninths tenth tenths
    hundredth hundredths thousandth thousandths hundred hundreds thousand thousands million millions
    billion billions trillion trillions dozen dozens score tens square cubic inverse reciprocal choose
    sin cos tan log ln exp except only also other else""".split()  # noqa: SIM905 - a word list reads best as text
)
_WORD_IN_TEXT = re.compile(
    r"(?P<number>.+?)\s*\\(?:text|mbox|mathrm|textrm|textnormal)\s*\{\s*(?P<words>[A-Za-z]{3,}(?:[ -][A-Za-z]{3,}){0,2})\s*\.?\s*\}"
)
# bare: four letters or more with a vowel, so that "5 abc" or "5 xyz" (a product of variables) is no unit
_BARE_WORD = re.compile(
    r"(?P<number>.*?\d)\s+(?P<words>(?=[a-z]*[aeiou])[a-z]{4,}(?:[ -](?=[a-z]*[aeiou])[a-z]{3,}){0,2})"
)


def _unit_word(s: str) -> tuple[str, str | None]:
    """(number, "word:apple") for a plain number followed by one to three words (in \\text{}: three letters
    or more; bare: lower case, the first of four letters or more), none of them in VALUE_WORDS; (s, None)
    for anything else."""
    match = _WORD_IN_TEXT.fullmatch(s) or _BARE_WORD.fullmatch(s)
    if not match or number(match.group("number").rsplit("=", 1)[-1]) is None:  # 12 apples, x = 12 apples
        return s, None
    words = re.split(r"[ -]", match.group("words").lower())
    if any(word in VALUE_WORDS for word in words):
        return s, None
    singular = [re.sub(r"e$", "", re.sub(r"s$", "", word)) for word in words]
    return match.group("number").strip(), "word:" + " ".join(singular)


# ----------------------------------------------------------------------------- cleaning
_UNICODE = str.maketrans(
    {
        "\u2212": "-",
        "\u2013": "-",
        "\u00d7": "\\times ",
        "\u22c5": "\\cdot ",
        "\u00b7": "\\cdot ",
        "\u03c0": "\\pi ",
        "\u221e": "\\infty ",
        "\u00b0": "^\\circ",
        "\u2264": "\\le ",
        "\u2265": "\\ge ",
        "\u2260": "\\ne ",
        "\u2248": "\\approx ",
        "\u221a": "\\sqrt",
        "\u00b2": "^2",
        "\u00bd": " 1/2",  # 1½ is the mixed number 1 1/2
        "\u2153": " 1/3",
        "\u2154": " 2/3",
        "\u00bc": " 1/4",
        "\u00be": " 3/4",
        "\u215b": " 1/8",
        "\u00b3": "^3",
        "\u00a2": "\\cent",
        "\u00a0": " ",
        "\u2009": " ",
        "\u202f": " ",
        "\uff0c": ",",
        "\n": " ",
        "\t": " ",
    }
)
_DELIMITERS = re.compile(r"(?<!\\)\$+|\\\(|\\\)|(?<!\\)\\\[|(?<!\\)\\\]")
_BOX = re.compile(r"\\(?:boxed|fbox)\s*(?=\{)")
_THIN_THOUSANDS = re.compile(r"(?<=\d),?\s*(?:\\[,!]|\{,\})\s*(?=\d{3}(?!\d))")  # 10\,080, 10,\!080, 10{,}080
_SPACING = re.compile(r"(?<!\\)\\(?:[,;:> ]|q?quad\b|hspace\s*\{[^{}]*\}|enspace\b|thinspace\b)|~")
_SIZING = re.compile(
    r"(?<!\\)\\(?:left|right|[bB]igg?[lr]?|middle)\s*(?:\.|(?=[\\(\[|)\]]))|\\(?:displaystyle|textstyle|scriptstyle)\b"
)
_FRACS = re.compile(r"\\[dtc]frac\b")
_MATRIX = re.compile(r"\{[bB]matrix\}")
_BRACKETED_MATRIX = re.compile(
    r"^[(\[]\s*\\begin\s*\{(?:matrix|array)\}(?:\s*\{[lcr|]*\})?(?P<body>.*)\\end\s*\{(?:matrix|array)\}\s*[)\]]$",
    re.DOTALL,
)
_WRAPPER = re.compile(
    r"\\(?:text|textbf|textit|textrm|textnormal|textsf|mathrm|mathbf|mathit|mathsf|mbox|emph|rm)\s*\{"
)
_CHOICE = re.compile(r"\(\s*([A-Za-z])\s*\)|([A-Z])")  # (C): a choice letter, not a grouping
_INNER_SPACE = re.compile(r"(?<=[(\[])\s+|\s+(?=[)\]])")  # "( 3, 4 )" -> "(3, 4)"
_APPROX = re.compile(r"\\approx|\\simeq|\\sim\b|\\doteq")
# Between two boxes of one answer: text without letters (spacing, commas, symbols), or text with a
# list word ("and", "or") or a comma in it. Other words (`\\boxed{1} no no \\boxed{2}`) are not a list.
_COMMAND_NAME = re.compile(r"\\[A-Za-z]+")
_LIST_JOINER = re.compile(r"\b(?:and|or)\b|[,;]")
_DOUBLED_BACKSLASH = re.compile(r"\\\\(?=[A-Za-z])")  # "\\frac" written with its backslash escaped twice
_SEPARATOR_WORDS = re.compile(r"\\text\s*\{\s*(?:,?\s*(?:and|or)\s*|,)\}|,?\s*\b(?:and|or)\b\s*")


def closing(s: str, i: int) -> int:
    """Index of the brace that closes the one at s[i], or -1."""
    depth = 0
    for j in range(i, len(s)):
        c = s[j]
        if c == "\\" and j + 1 < len(s) and s[j + 1] in "{}":
            continue
        if c == "{" and (j == 0 or s[j - 1] != "\\"):
            depth += 1
        elif c == "}" and (j == 0 or s[j - 1] != "\\"):
            depth -= 1
            if depth == 0:
                return j
    return -1


def _unbox(s: str) -> str | None:
    """The contents of every \\boxed{} in s, joined by commas; s itself without a box; None when a box
    never closes or words that join no list stand between two boxes. Several boxes are several answers
    (text around them, such as `y_1 =`, is not read): a list equals only a reference with exactly those
    answers, so boxes cannot make a hedge that pays."""
    for _ in range(3):  # nested boxes: \boxed{\boxed{34}}
        if "box" not in s:
            return s
        parts, i = [], 0
        for match in _BOX.finditer(s):
            if match.start() < i:
                continue  # inside a box already taken
            if parts and not _joins_boxes(s[i : match.start()]):
                return None  # "\boxed{1} no no \boxed{2}": words between boxes, not a list of answers
            end = closing(s, match.end())
            if end < 0:
                return None
            content = s[match.end() + 1 : end].strip()
            if not parts or parts[-1] != content:
                parts.append(content)
            i = end + 1
        if not parts:
            return s
        s = ", ".join(parts)
    return s


def _joins_boxes(between: str) -> bool:
    """True when `between` joins two boxes into a list: no words (`, `, `\\quad`, `++`), or words with
    "and", "or" or a comma among them (`\\text{ for part (a) and }`, `and y_2 =`)."""
    return not re.search(r"[A-Za-z]", _COMMAND_NAME.sub(" ", between)) or bool(_LIST_JOINER.search(between))


def _unwrap(s: str) -> tuple[str, bool]:
    """Remove \\text{...}-like wrappers and braces that span the whole answer; (s, whether text was removed)."""
    was_text = False
    for _ in range(4):
        if s.startswith("{") and closing(s, 0) == len(s) - 1:
            s = s[1:-1].strip()
            continue
        match = _WRAPPER.match(s)
        if match and closing(s, match.end() - 1) == len(s) - 1:
            s, was_text = s[match.end() : -1].strip(), True
            continue
        if s.startswith("(") and s.endswith(")") and _grouping(s) and not _CHOICE.fullmatch(s):
            s = s[1:-1].strip()  # ((3)): parentheses around one answer group it, they add nothing
            continue
        break
    return s, was_text


def _grouping(s: str) -> bool:
    """True when s is one pair of parentheses around something without a top-level comma or semicolon."""
    depth = 0
    for i, c in enumerate(s):
        depth += (c in "([{") - (c in ")]}")
        if depth == 0 and i < len(s) - 1:
            return False
        if depth == 1 and c in ",;":
            return False
    return True


def _cut_approximation(s: str) -> str:
    """`\\frac{\\sqrt3}{3} \\approx 0.577` -> the exact part; `\\approx 0.577` or `x \\approx 0.577` -> 0.577."""
    match = _APPROX.search(s)
    if not match:
        return s
    left, right = s[: match.start()].strip(), s[match.end() :].strip()
    if not left or re.fullmatch(r"[A-Za-z]\s*=?", left):
        return right
    return left


# "The answer is 34", "Answer: 34", "So the final answer is 34": a lead-in from this closed list, at the
# start, with the whole answer after it. Nothing else is read out of a sentence.
_LEAD_IN = r"(?:(?:so|thus|therefore|hence)\s*,?\s*)?(?:the\s+)?(?:final\s+)?(?:answer|result|value|solution)\s*(?:is\s*:?|:|=)"
_LEAD_IN_BARE = re.compile(rf"{_LEAD_IN}\s*(?=\S)", re.IGNORECASE)
_LEAD_IN_TEXT = re.compile(rf"\\(?:text|textbf|textit|mbox|mathrm)\s*\{{\s*{_LEAD_IN}\s*\}}\s*(?=\S)", re.IGNORECASE)
_TRIG_DEGREES = re.compile(
    r"\\(?P<f>sin|cos|tan|cot|sec|csc)\s*(?P<power>\^\s*\{?\s*\d\s*\}?)?\s*"
    r"(?:(?P<p>\()\s*|(?P<b>\{)\s*)?(?P<n>-?\d{1,6}(?:\.\d{1,6})?)\s*"
    r"(?:\^\s*\{\s*\\circ\s*\}|\^\s*\\circ|\\degree|(?:\\text\s*\{\s*)?degrees?\s*\}?)\s*(?(p)\)|(?(b)\}|))"
)
# 2,500 inside an expression (`x+2,500`, `2,500x`): digits grouped by three, as for a whole number
_GROUPED = r"\d{1,3}(?:,\d{3})+(?![\d,.])"
_GROUPED_AFTER_OPERATOR = re.compile(rf"(?<=[^\s,(\[])(?P<op>\s*(?:[+\-*/=^]|\\cdot|\\times)\s*)(?P<n>{_GROUPED})")
_GROUPED_BEFORE_OPERATOR = re.compile(rf"(?<![\d,.])(?P<n>{_GROUPED})(?=\s*(?:[+\-*/^]|\\cdot|\\times|[A-Za-z]))")


# "34 is the answer", "34 \\text{ is the final answer}": the same, said after the answer
_LEAD_OUT = re.compile(
    r"\s*(?:\\text\s*\{\s*)?(?:is|would be|will be)\s+(?:the\s+)?(?:final\s+)?(?:answer|result)\s*\.?\s*\}?\s*$",
    re.IGNORECASE,
)
_MARKDOWN_BOLD = re.compile(r"\*\*(?P<inner>[^*]+)\*\*")


_AND = re.compile(r"\s*(?:\\text\s*\{\s*and\s*\}|\band\b|\\land\b|\\wedge\b)\s*")
_ONE_SIDED = re.compile(r"<|>|\\(?:le|ge|leq|geq|lt|gt|leqslant|geqslant)(?![A-Za-z])")


def _conjunction_marked(s: str) -> str:
    """`x > 2 \\text{ and } x < 5` -> `x > 2 \\land x < 5`: "and" between two inequalities means both hold
    (an interval, structures.conjunction), not a list of two answers as between numbers."""
    parts = _AND.split(s)
    if len(parts) == 2 and all(_ONE_SIDED.search(part) for part in parts):
        return f"{parts[0].strip()} \\land {parts[1].strip()}"
    return s


def _lead_in_removed(s: str) -> str:
    """The answer after a lead-in from the closed list; markdown bold (`**Answer:** **34**`) is emphasis."""
    if "**" in s:
        s = _MARKDOWN_BOLD.sub(lambda m: m.group("inner"), s).strip()
    match = _LEAD_IN_TEXT.match(s) or _LEAD_IN_BARE.match(s)
    if match:
        return s[match.end() :]
    match = _LEAD_OUT.search(s)
    return s[: match.start()] if match and match.start() > 0 else s


def _degrees_in_radians(match: re.Match) -> str:
    """`\\sin(150^\\circ)` -> `\\sin(\\frac{150\\pi}{180})`: degrees inside a trigonometric function are
    an angle, not a unit to remove (which would leave 150 radians)."""
    power = "^{" + re.sub(r"\D", "", match.group("power")) + "}" if match.group("power") else ""  # \sin^2 30°
    return f"\\{match.group('f')}{power}(\\frac{{{match.group('n')}\\pi}}{{180}})"


def _grouped_digits(s: str) -> str:
    s = _GROUPED_AFTER_OPERATOR.sub(lambda m: m.group("op") + m.group("n").replace(",", ""), s)
    return _GROUPED_BEFORE_OPERATOR.sub(lambda m: m.group("n").replace(",", ""), s)


def clean_text(raw: str) -> tuple[str, str | None, bool] | None:
    """(cleaned answer, canonical unit or None or "conflict", whether a \\text{} wrapper was removed), or
    None when the answer is malformed (a box that never closes, words between boxes)."""
    s = raw.translate(_UNICODE)
    if "\\\\" in s and "\\begin" not in s and "matrix" not in s:
        s = _DOUBLED_BACKSLASH.sub(r"\\", s)
    s = _DELIMITERS.sub(" ", s)
    s = _unbox(s)
    if s is None:
        return None
    s = _THIN_THOUSANDS.sub(",", s).replace("\\!", "")
    s = _SIZING.sub("", _SPACING.sub(" ", s))
    s = _MATRIX.sub("{pmatrix}", _FRACS.sub("\\\\frac", s))
    s = s.replace("{,}", ",")
    s = re.sub(r"\s+", " ", s).strip().rstrip(".").strip()
    s = to_latex(_lead_in_removed(s))
    if "circ" in s or "degree" in s:
        s = _TRIG_DEGREES.sub(_degrees_in_radians, s)
    if "," in s:
        s = _grouped_digits(s)
    if s.endswith("\\") and not s.endswith("\\\\"):
        s = s[:-1].rstrip()  # "185\\": a stray backslash at the end
    if "matrix" in s or "array" in s:  # [\begin{matrix} ... \end{matrix}] is a pmatrix
        s = _BRACKETED_MATRIX.sub(r"\\begin{pmatrix}\g<body>\\end{pmatrix}", s)
    s, was_text = _unwrap(s)
    s = _cut_approximation(s)
    if any(c.isdigit() or c == "\\" for c in s):
        s = _SEPARATOR_WORDS.sub(", ", _conjunction_marked(s)).strip(" ,")
    s, unit = strip_unit(s.rstrip(".").strip())
    s, inner_text = _unwrap(s)
    s = _INNER_SPACE.sub("", re.sub(r"\s+", " ", s)).strip()
    return s, unit, was_text or inner_text
