"""The symbolic worker, its own side: a process that judges (gold, pred) pairs with math-verify.

    python verifier/serve.py FLOAT_ROUNDING      (started by verifier/symbolic.py; not for people)

Reads `[id, cpu_limit, gold, pred]` lines, writes `[id, verdict, cpu_seconds]` lines; verdict is true,
false, "timeout" (the judgement used cpu_limit seconds of this process's CPU time) or "error". Before it
writes `{"ready": pid}` it judges the first warm-up pairs below, and the rest while idle (then it writes
`{"warm": true}`), so the first real answers do not pay for sympy's lazy imports and the LaTeX
parser's set-up (hundreds of ms the first time a shape is seen).
Needs only the standard library, sympy and math-verify; exits when its input closes or its parent dies.
"""

import sys

# Run as a script, this folder would come first on sys.path, where its modules could shadow others.
sys.path[:] = [p for p in sys.path if p and __file__.rsplit("/", 1)[0] not in (p, p.rstrip("/"))]

import json
import logging
import os
import select
import signal
import time
from functools import lru_cache

# Written for this purpose (one of each common shape); not taken from any benchmark. The first
# _WARM_UP_BEFORE_READY before the worker says it is ready, the rest while it is idle.
_WARM_UP_BEFORE_READY = 10
_WARM_UP = [
    ("\\frac{\\sqrt{7}}{5}", "\\frac{7}{\\sqrt{5}}"),
    ("y = 3x - 7", "3x - y - 7 = 0"),
    ("3 - 4i", "-4i + 3"),
    ("x^4 + 2x^3 - x + 5", "5 - x + 2x^3 + x^4"),
    ("3\\sqrt{7}", "\\sqrt{63}"),
    ("\\frac{3 \\pi^2}{2}", "\\frac{3\\pi^2}{2}"),
    ("2 + 11i", "11i + 2"),
    ("2x + 3y - 6z + 9 = 0", "-4x - 6y + 12z - 18 = 0"),
    ("y = -4x", "4x + y = 0"),
    ("3t^2 + 5t - 2", "(3t - 1)(t + 2)"),
    ("(c - 3)(d + 4)", "cd + 4c - 3d - 12"),
    ("\\frac{7 + 3b}{12}", "\\frac{3b + 7}{12}"),
    ("\\tan \\theta", "\\frac{\\sin \\theta}{\\cos \\theta}"),
    ("\\sqrt{5 + 2\\sqrt{6}}", "\\sqrt{2} + \\sqrt{3}"),
    ("12 \\pi", "12\\pi"),
    ("\\frac{5000}{\\pi}", "\\frac{5000}{\\pi}"),
    ("7 + 3\\pi", "3\\pi + 7"),
    ("-\\infty", "-\\infty"),
    ("-\\frac{\\pi}{4}", "-\\frac{\\pi}{4}"),
    ("\\frac{2\\sqrt{5}}{7}", "\\frac{2}{7}\\sqrt{5}"),
    ("1.5\\pi", "\\frac{3\\pi}{2}"),
    ("e^{2}", "e^2"),
    ("\\log_2 5", "\\frac{\\ln 5}{\\ln 2}"),
    ("p + 2q", "2q + p"),
    ("\\pi", "3.14159"),
    ("2^{10}", "1024"),
    ("\\sqrt[3]{2}", "2^{1/3}"),
    ("\\cos x", "\\sin(\\frac{\\pi}{2} - x)"),
]


def main(float_rounding: int) -> None:
    out = protocol_output()  # before the imports, so nothing they print reaches the protocol
    serve(out, math_verify_judge(float_rounding), _WARM_UP)


def protocol_output():
    """The stream replies go to: the original stdout. Anything else printed goes to stderr, and Ctrl-C is
    for the parent (which ends this process)."""
    out = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return out


def math_verify_judge(float_rounding: int):
    """judge(gold, pred) -> bool with math-verify, set up once (imports sympy and math-verify)."""
    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    logging.getLogger("latex2sympy2_extended").setLevel(logging.CRITICAL)
    import sympy
    from latex2sympy2_extended.latex2sympy2 import NormalizationConfig
    from math_verify import LatexExtractionConfig, parse, verify

    # math-verify's own unit list removes any trailing letter ("2c" -> "2"): the verifier removes units itself
    config = [
        LatexExtractionConfig(
            normalization_config=NormalizationConfig(
                basic_latex=True, units=False, malformed_operators=True, nits=True, boxed="all", equations=False
            ),
            boxed_match_priority=0,
        )
    ]

    @lru_cache(maxsize=8192)
    def parsed(latex: str) -> tuple:
        return tuple(imaginary(x) for x in parse(f"${latex}$", extraction_config=config, parsing_timeout=None))

    def imaginary(value):
        """The letter i as the imaginary unit (math-verify reads it as a variable, so `i(2-i)` != `1+2i`)."""
        if not isinstance(value, sympy.Basic):
            return value
        letters = {s: sympy.I for s in value.free_symbols if isinstance(s, sympy.Symbol) and s.name == "i"}
        return value.xreplace(letters) if letters else value

    def equations_equal(gold, pred):
        """Two equations equal up to rearrangement and a nonzero factor (9x^2 + 4y^2 = 36 and
        x^2/4 + y^2/9 = 1): True, False, or None to leave it to math-verify (whose own comparison
        solves both equations: 100+ ms for an ellipse)."""
        if not (isinstance(gold, sympy.Equality) and isinstance(pred, sympy.Equality)):
            return None
        gold_zero, pred_zero = gold.lhs - gold.rhs, pred.lhs - pred.rhs
        if gold_zero == 0 or pred_zero == 0:
            return None
        ratio = sympy.cancel(sympy.together(gold_zero / pred_zero))
        if ratio.is_number:
            return bool(ratio.is_finite and ratio != 0)
        if gold_zero.is_polynomial() and pred_zero.is_polynomial():
            return False  # polynomials that are not multiples of each other: different curves
        return None

    def judge(gold: str, pred: str):
        gold_parsed, pred_parsed = parsed(gold), parsed(pred)
        if not gold_parsed or not pred_parsed:
            return False
        same = equations_equal(gold_parsed[0], pred_parsed[0])
        if same is not None:
            return same
        return bool(verify(list(gold_parsed), list(pred_parsed), float_rounding=float_rounding, timeout_seconds=None))

    judge.clear = parsed.cache_clear
    return judge


def serve(out, judge, warm_up: list) -> None:
    """Answer jobs on stdin with judge(gold, pred) under each job's CPU limit, until stdin closes or the
    parent dies. warm_up: pairs judged before saying ready (the first _WARM_UP_BEFORE_READY) and while idle.
    tests/spinning_worker.py serves a judge that never ends, to test the CPU limit without timing."""

    class JobTimeout(BaseException):  # BaseException: math-verify's `except Exception` must not eat it
        pass

    def on_cpu_limit(signum, frame):
        raise JobTimeout

    signal.signal(signal.SIGPROF, on_cpu_limit)

    def timed_judge(gold: str, pred: str, cpu_limit: float):
        """(verdict, CPU seconds used); the limit is on this process's CPU time (ITIMER_PROF), which
        does not run while the process waits for a core, so load does not change the verdict."""
        before = time.process_time()
        signal.setitimer(signal.ITIMER_PROF, max(cpu_limit, 0.001))
        try:
            verdict = judge(gold, pred)
        except JobTimeout:
            verdict = "timeout"
        except Exception:  # noqa: BLE001 - math-verify or sympy failed on this input
            verdict = "error"
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
        return verdict, time.process_time() - before

    for pair in warm_up[:_WARM_UP_BEFORE_READY]:  # sympy imports much of itself on first use
        timed_judge(*pair, cpu_limit=5.0)
    out.write(json.dumps({"ready": os.getpid()}).encode() + b"\n")

    parent, buffer, warm_up = os.getppid(), b"", list(warm_up[_WARM_UP_BEFORE_READY:])
    if not warm_up:
        out.write(b'{"warm": true}\n')
    while True:
        if b"\n" not in buffer:
            readable, _, _ = select.select([0], [], [], 0 if warm_up else 1.0)
            if not readable:
                if os.getppid() != parent:
                    return  # orphaned
                if warm_up:  # the rest of the warm-up while idle: a job waits for one pair at most
                    timed_judge(*warm_up.pop(0), cpu_limit=5.0)
                    if not warm_up:
                        out.write(b'{"warm": true}\n')
                continue
            chunk = os.read(0, 65536)
            if not chunk:
                return  # the parent closed our input: it is done or gone
            buffer += chunk
            continue
        line, buffer = buffer.split(b"\n", 1)
        try:
            message = json.loads(line)
        except ValueError:
            continue
        if isinstance(message, dict):
            if message.get("clear") and hasattr(judge, "clear"):
                judge.clear()
            continue
        job, cpu_limit, gold, pred = message
        verdict, cpu = timed_judge(gold, pred, cpu_limit)
        out.write(json.dumps([job, verdict, round(cpu, 6)]).encode() + b"\n")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 12)
