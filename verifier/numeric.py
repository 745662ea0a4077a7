"""Numbers: the exact value of an answer written as one plain number, and of plain arithmetic.

Values are Fractions, so `0.5` = `1/2` = `\\frac12` exactly and `0.33` != `\\frac13`; `2 1/2` is a mixed
number (a proper fraction only). A comma never marks decimals: only digits grouped by three
(`12,345.5`) read as one number. `identity` compares two rational expressions at hashed points, exactly,
or modulo a 61-bit prime when a power is too big for that (`(x-a)^{6000}`); `polynomial` reads the
coefficients of a linear or quadratic expression in one variable (for solving inequalities). `arithmetic` evaluates `+ - * /`,
`\\cdot`, `\\times`, `\\frac`, parentheses and small integer powers in-process (`17 \\cdot 2`, the members
of `x = 2 + 3 + 4 = 9`), so such answers need no sympy and no worker time.
"""

from __future__ import annotations

import hashlib
import math
import re
from fractions import Fraction

from .limits import MAX_DIGITS

DECIMAL = re.compile(
    rf"[+-]?(?:\d{{1,{MAX_DIGITS}}}(?:\.\d{{0,{MAX_DIGITS}}})?|\.\d{{1,{MAX_DIGITS}}})(?:[eE][+-]?\d{{1,3}})?"
)
PLAIN_INT = re.compile(rf"-?\d{{1,{MAX_DIGITS}}}")
_THOUSANDS = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d{1,20})?")  # 12,345 and 12,345.5: one number
_SLASH = re.compile(rf"([+-]?\d{{1,{MAX_DIGITS}}})\s*/\s*(\d{{1,{MAX_DIGITS}}})")
_FRAC_ARGS = re.compile(
    rf"\\frac\s*(?:\{{\s*(-?\d{{1,{MAX_DIGITS}}})\s*\}}|(\d))\s*(?:\{{\s*(\d{{1,{MAX_DIGITS}}})\s*\}}|(\d))"
)
MIXED_SPACED = re.compile(r"(\d{1,20})\s+(\d{1,20})\s*/\s*(\d{1,20})")  # 1 1/2: a mixed number
_SCIENTIFIC = re.compile(r"(?P<mantissa>.+?)\s*(?:\\times|\\cdot|\*)\s*10\s*\^\s*\{?\s*(?P<exp>[+-]?\d{1,3})\s*\}?")


def number(s: str) -> Fraction | None:
    """The exact value of s written as one plain number (decimal, a/b, \\frac, mixed, a x 10^k), or None."""
    s = s.strip()
    if PLAIN_INT.fullmatch(s):
        return Fraction(int(s))
    if s.startswith("+"):
        s = s[1:].lstrip()
    if _THOUSANDS.fullmatch(s.lstrip("-")):
        s = s.replace(",", "")
    try:
        if DECIMAL.fullmatch(s):
            return Fraction(s)
        match = _SLASH.fullmatch(s)
        if match:
            numerator, denominator = int(match.group(1)), int(match.group(2))
            return Fraction(numerator, denominator) if denominator else None
        negative = s.startswith("-")
        body = s[1:].lstrip() if negative else s
        match = MIXED_SPACED.fullmatch(body)
        if match:  # 1 1/2: one and a half, only as a proper fraction (1 3/2 is no number people write)
            whole, numerator, denominator = (int(match.group(k)) for k in (1, 2, 3))
            if not 0 < numerator < denominator:
                return None
            value = whole + Fraction(numerator, denominator)
            return -value if negative else value
        whole = None
        mixed = re.match(r"(\d{1,20})\s*(?=\\frac)", body)
        if mixed:
            whole, body = int(mixed.group(1)), body[mixed.end() :]
        match = _FRAC_ARGS.fullmatch(body)
        if match:
            numerator = int(match.group(1) or match.group(2))
            denominator = int(match.group(3) or match.group(4))
            if denominator == 0:
                return None
            value = Fraction(numerator, denominator)
            if whole is not None:  # 2\frac{1}{2} is two and a half (MATH's convention), only as a proper fraction
                if not 0 < value < 1:
                    return None
                value += whole
            return -value if negative else value
        match = _SCIENTIFIC.fullmatch(s)
        if match and DECIMAL.fullmatch(match.group("mantissa").strip()):
            return Fraction(match.group("mantissa").strip()) * Fraction(10) ** int(match.group("exp"))
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    return None


# ----------------------------------------------------------------------------- arithmetic and identities
_FUNCTIONS = {"\\sin": math.sin, "\\cos": math.cos, "\\tan": math.tan, "\\ln": math.log, "\\exp": math.exp}
_TOKEN = re.compile(
    r"\s*(\d+(?:\.\d*)?|\.\d+|\\(?:frac|cdot|times|div|sqrt|pi|sin|cos|tan|ln|exp)(?![A-Za-z])|[A-Za-z]|[-+*/^(){}\[\]])"
)
MAX_ARITHMETIC_CHARS = 120  # longer text is left to math-verify (bounded by shape there)
_MAX_POWER = 64  # largest integer exponent evaluated here
_MAX_BITS = 4096  # a value with a larger numerator or denominator is not evaluated here
_NOT_VARIABLES = set("ieE")  # the imaginary unit and Euler's number to math-verify: not plain variables
_MAX_VARIABLES = 6


class _NotArithmetic(Exception):
    pass


def _tokens(s: str) -> list[str] | None:
    s = s.strip()
    if not s or len(s) > MAX_ARITHMETIC_CHARS:
        return None
    tokens, i = [], 0
    while i < len(s):
        match = _TOKEN.match(s, i)
        if not match:
            return None if s[i:].strip() else tokens
        tokens.append(match.group(1))
        i = match.end()
    return tokens


def _evaluate(tokens: list[str], env: dict, exact: bool):
    try:
        parser = _Parser(tokens, env, exact)
        value = parser.sum()
        return value if parser.i == len(tokens) else None
    except (_NotArithmetic, ZeroDivisionError, OverflowError, ValueError):
        return None


def arithmetic(s: str) -> Fraction | None:
    """The exact value of plain arithmetic on decimals (`17*2`, `2 + 3 + 4`, `\\frac{6}{4} \\cdot 2`,
    `2^{10}`), or None for anything else (a letter, \\sqrt, \\pi, another command)."""
    tokens = _tokens(s)
    if not tokens or not any(t[0].isdigit() or t[0] == "." for t in tokens):
        return None
    return _evaluate(tokens, {}, exact=True)


def identity(pred: str, gold: str) -> bool | None:
    """Whether two expressions in + - * / ^, \\frac, \\sqrt, \\pi, decimals and one-letter variables are
    the same function, decided in-process; None when either is anything else (then math-verify decides).

    Rational expressions (no \\sqrt, no \\pi) are evaluated exactly, as Fractions, at three points whose
    coordinates are drawn from a hash of the two texts (so the verdict is a function of the texts): two
    different rational functions of bounded degree agree at such a point with a chance of about 2^-50.
    With \\sqrt or \\pi the values are floats, and only a clear difference (relative 1e-6, far beyond
    FLOAT_ROUNDING) decides, as False; equal-looking values go to math-verify."""
    pred_tokens, gold_tokens = _tokens(pred), _tokens(gold)
    if not pred_tokens or not gold_tokens:
        return None
    letters = {t for t in pred_tokens + gold_tokens if t.isalpha()}
    if letters & _NOT_VARIABLES or len(letters) > _MAX_VARIABLES:
        return None
    seed = hashlib.sha256(f"{pred}\x00{gold}".encode()).digest()
    exact = not any(t in ("\\sqrt", "\\pi") or t in _FUNCTIONS for t in pred_tokens + gold_tokens)
    for point in range(3 if exact else 2):
        env = {}
        for k, letter in enumerate(sorted(letters)):
            chunk = hashlib.sha256(seed + bytes([point, k])).digest()
            draw = int.from_bytes(chunk[:8], "big") >> 12  # 52 bits
            env[letter] = Fraction(draw + 2, 1 << 50) + 1 if exact else (draw + 2) / 2.0**52 + 0.5
        a, b = _evaluate(pred_tokens, env, exact), _evaluate(gold_tokens, env, exact)
        if a is None or b is None:  # too big to evaluate exactly, such as (x-a)^{6000}: modulo a prime
            return _modular_identity(pred_tokens, gold_tokens, sorted(letters), seed) if exact and letters else None
        if exact and a != b:
            return False
        if not exact and abs(a - b) > 1e-6 * max(1.0, abs(a), abs(b)):
            return False
    return True if exact else None


def equation_identity(pred: str, gold: str) -> bool | None:
    """Whether two equations `l = r` in the terms `identity` reads are the same up to a nonzero factor
    (`2y = 4x + 6` and `y - 2x - 3 = 0`): (l - r) of one is a constant nonzero multiple of the other at
    three hashed points, exactly; None when either is anything else (math-verify decides)."""
    sides = [text.split("=") for text in (pred, gold)]
    if any(len(parts) != 2 for parts in sides):
        return None
    tokens = [[_tokens(part) for part in parts] for parts in sides]
    if any(not t for pair in tokens for t in pair):
        return None
    flat = [t for pair in tokens for part in pair for t in part]
    letters = {t for t in flat if t.isalpha()}
    if not letters or letters & _NOT_VARIABLES or len(letters) > _MAX_VARIABLES or "\\sqrt" in flat or "\\pi" in flat:
        return None
    seed = hashlib.sha256(f"{pred}\x00{gold}".encode()).digest()
    ratios = set()
    for point in range(3):
        env = {}
        for k, letter in enumerate(sorted(letters)):
            draw = int.from_bytes(hashlib.sha256(seed + bytes([point, k])).digest()[:8], "big") >> 12
            env[letter] = Fraction(draw + 2, 1 << 50) + 1
        values = [_evaluate(part, env, exact=True) for pair in tokens for part in pair]
        if any(v is None for v in values):
            return None
        pred_zero, gold_zero = values[0] - values[1], values[2] - values[3]
        if pred_zero == 0 or gold_zero == 0:
            return None  # an identity such as x = x, or a point on the curve: let math-verify decide
        ratios.add(pred_zero / gold_zero)
    return len(ratios) == 1


class _Parser:
    """Recursive descent: sum := product (+|- product)*; product := power ((*|/|\\cdot|\\times|\\div)?
    power)*; power := unary (^ integer)?; unary := (-|+) unary | atom. A number written right after a
    number (`2 3`) or before \\frac (a mixed number), and a letter before `(` (a function?), are refused."""

    def __init__(self, tokens: list[str], env: dict, exact: bool):
        self.tokens, self.i, self.env, self.exact = tokens, 0, env, exact

    def peek(self) -> str | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, expected: str | None = None) -> str:
        token = self.peek()
        if token is None or (expected is not None and token != expected):
            raise _NotArithmetic
        self.i += 1
        return token

    def sum(self):
        value = self.product()
        while self.peek() in ("+", "-"):
            value = value + self.product() if self.take() == "+" else value - self.product()
        return self._small(value)

    def product(self):
        value = self.power()
        while True:
            token, before = self.peek(), self.tokens[self.i - 1]
            if token in ("*", "\\cdot", "\\times"):
                self.take()
                value *= self.power()
            elif token in ("/", "\\div"):
                self.take()
                value /= self.power()
            elif token is not None and (
                token[0].isalnum() or token in ("(", "{", "\\frac", "\\sqrt", "\\pi") or token in _FUNCTIONS
            ):
                number_after_number = token[0].isdigit() and (before[0].isdigit() or before in (")", "}"))
                if number_after_number or (token == "\\frac" and before[0].isdigit()):
                    raise _NotArithmetic  # "2 3", "(2)3", "3\frac{1}{2}"
                if token == "(" and before.isalpha():
                    raise _NotArithmetic  # f(x): a function, not a product
                value *= self.power()  # 2x, xy, 3(x + 1), 2\sqrt{3}
            else:
                return self._small(value)

    def power(self):
        base = self.unary()
        if self.peek() == "^":
            self.take()
            exponent = self.atom()
            if abs(exponent) > _MAX_POWER:
                raise _NotArithmetic
            if exponent == int(exponent):
                return self._small(base ** int(exponent))
            if self.exact or base <= 0:  # 2^{1/2}: a float, and only for a positive base
                raise _NotArithmetic
            return self._small(base**exponent)
        return base

    def unary(self):
        if self.peek() in ("-", "+"):
            return -self.unary() if self.take() == "-" else self.unary()
        return self.atom()

    def atom(self):
        token = self.take()
        if token[0].isdigit() or token[0] == ".":
            return Fraction(token) if self.exact else float(token)
        if token.isalpha():
            if token not in self.env:
                raise _NotArithmetic
            return self.env[token]
        if token == "\\frac":
            return self.group() / self.group()
        if token == "\\sqrt" and not self.exact:
            value = self.group()
            if value < 0:
                raise _NotArithmetic
            return math.sqrt(value)
        if token == "\\pi" and not self.exact:
            return math.pi
        if token in _FUNCTIONS and not self.exact:
            if self.peek() not in ("(", "{"):
                raise _NotArithmetic  # \sin x^2: which power applies to what is left to math-verify
            argument = self.atom()
            if abs(argument) > 1e4 or (token == "\\ln" and argument <= 0):
                raise _NotArithmetic  # far from zero a float's sine is noise; ln needs a positive number
            return _FUNCTIONS[token](argument)
        closing = {"(": ")", "{": "}", "[": "]"}.get(token)
        if closing is None:
            raise _NotArithmetic
        value = self.sum()
        self.take(closing)
        return value

    def group(self):
        """A braced argument, or one digit or letter (\\frac12, \\sqrt2)."""
        if self.peek() != "{":
            token = self.take()
            if token.isdigit() and len(token) == 1:
                return Fraction(int(token)) if self.exact else float(token)
            if token.isalpha() and token in self.env:
                return self.env[token]
            raise _NotArithmetic  # \frac123 is \frac{1}{2}3: left to math-verify
        self.take("{")
        value = self.sum()
        self.take("}")
        return value

    def _small(self, value):
        if self.exact:
            if value.numerator.bit_length() > _MAX_BITS or value.denominator.bit_length() > _MAX_BITS:
                raise _NotArithmetic
        elif not math.isfinite(value) or abs(value) > 1e100:
            raise _NotArithmetic
        return value


def _hashed_point(seed: bytes, point: int) -> Fraction:
    draw = int.from_bytes(hashlib.sha256(seed + bytes([point])).digest()[:8], "big") >> 12  # 52 bits
    return Fraction(draw + 2, 1 << 50) + 1


def polynomial(s: str) -> tuple[str, tuple[Fraction, Fraction, Fraction]] | None:
    """(variable, (c0, c1, c2)) when s is c0 + c1 v + c2 v^2 in one letter v with rational coefficients,
    however written (`9-12r`, `2(x+1)`, `x^2 - 5x + 6`, `(x-2)(x-3)`); None for anything else. The
    coefficients come from the values at 0, 1 and -1, exactly; two more points drawn from a hash of the
    text confirm that the degree is at most 2 (a higher-degree or rational function fails them)."""
    tokens = _tokens(s)
    if not tokens:
        return None
    letters = {t for t in tokens if t.isalpha()}
    if len(letters) != 1 or letters & _NOT_VARIABLES:
        return None
    (letter,) = letters
    values = [_evaluate(tokens, {letter: Fraction(x)}, exact=True) for x in (0, 1, -1)]
    if any(v is None for v in values):
        return None
    c0, c1, c2 = values[0], (values[1] - values[2]) / 2, (values[1] + values[2]) / 2 - values[0]
    seed = hashlib.sha256(s.encode()).digest()
    for point in range(2):
        t = _hashed_point(seed, point)
        if _evaluate(tokens, {letter: t}, exact=True) != c0 + c1 * t + c2 * t * t:
            return None
    return letter, (c0, c1, c2)


# ----------------------------------------------------------------------------- modular evaluation
_PRIME = (1 << 61) - 1  # values modulo this prime: (x-a)^{6000} costs a few multiplications, not 6000 digits
_MAX_MODULAR_EXPONENT_BITS = 64


class _Mod:
    """An integer modulo _PRIME, with the operations _Parser uses (a division by 0 raises)."""

    __slots__ = ("v",)

    def __init__(self, v: int):
        self.v = v % _PRIME

    @classmethod
    def of(cls, value: Fraction) -> _Mod:
        if value.denominator % _PRIME == 0:
            raise ZeroDivisionError
        return cls(value.numerator * pow(value.denominator, -1, _PRIME))

    def __add__(self, other):
        return _Mod(self.v + other.v)

    def __sub__(self, other):
        return _Mod(self.v - other.v)

    def __mul__(self, other):
        return _Mod(self.v * other.v)

    def __truediv__(self, other):
        if other.v == 0:
            raise ZeroDivisionError
        return _Mod(self.v * pow(other.v, -1, _PRIME))

    def __neg__(self):
        return _Mod(-self.v)

    def __eq__(self, other):
        return isinstance(other, _Mod) and self.v == other.v

    def __hash__(self):
        return self.v


class _ModularParser(_Parser):
    """_Parser's grammar on values modulo _PRIME; an exponent must be plain integer arithmetic (`^{6000}`,
    `^{2 \\cdot 3000}`), evaluated exactly. No \\sqrt, \\pi or functions."""

    def __init__(self, tokens: list[str], env: dict):
        super().__init__(tokens, env, exact=True)

    def atom(self):
        token = self.peek()
        if token is not None and (token[0].isdigit() or token[0] == "."):
            self.take()
            return _Mod.of(Fraction(token))
        return super().atom()

    def group(self):
        token = self.peek()
        if token is not None and token != "{" and token.isdigit() and len(token) == 1:
            self.take()
            return _Mod(int(token))
        return super().group()

    def power(self):
        base = self.unary()
        if self.peek() != "^":
            return base
        self.take()
        exponent_parser = _Parser(self.tokens, {}, exact=True)  # the exponent's true value, not its residue
        exponent_parser.i = self.i
        exponent = exponent_parser.atom()
        self.i = exponent_parser.i
        if exponent.denominator != 1 or exponent.numerator.bit_length() > _MAX_MODULAR_EXPONENT_BITS:
            raise _NotArithmetic
        if exponent < 0:
            return _Mod(1) / _Mod(pow(base.v, -int(exponent), _PRIME))
        return _Mod(pow(base.v, int(exponent), _PRIME))

    def _small(self, value):
        return value


def _modular_identity(pred_tokens: list[str], gold_tokens: list[str], letters: list[str], seed: bytes) -> bool | None:
    """Whether two rational expressions agree at three points modulo a 61-bit prime, the points drawn from
    a hash of the texts. Two different rational functions whose degree is at most D agree at such a point
    with a chance of about D / 2^61 (Schwartz-Zippel): 2^-47 for a degree of ten thousand. None when an
    expression is not of this kind or a denominator vanishes at a point."""
    for point in range(3):
        env = {}
        for k, letter in enumerate(letters):
            draw = int.from_bytes(hashlib.sha256(seed + b"mod" + bytes([point, k])).digest()[:8], "big")
            env[letter] = _Mod(draw)
        values = []
        for tokens in (pred_tokens, gold_tokens):
            try:
                parser = _ModularParser(tokens, env)
                value = parser.sum()
                values.append(value if parser.i == len(tokens) else None)
            except (_NotArithmetic, ZeroDivisionError, ValueError, AttributeError, TypeError):
                return None
        if None in values:
            return None
        if values[0] != values[1]:
            return False
    return True
