"""Measure the verifier on the 500 MATH-500 reference answers (tests/data/math500_answers.jsonl):
how many equal themselves under harmless rewriting, how many wrong copies it refuses, and how long
each call takes, cold and warm, in the main thread and in a worker thread.

    python bench/verifier.py            # all of it (a minute or two on a 2-core machine)
    python bench/verifier.py --quick    # the first 150 references

Targets (issue #9): reflexive share >= 99 %; every wrong copy refused; every call within 100 ms,
the first (cold) call on each answer included. Exits 1 if a target is missed.

The rewritings and the wrong copies are generated here (and imported by tests/test_rewards.py), so
the benchmark and the tests measure the same thing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import sys
import threading
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import verifier  # noqa: E402
from rewards import REASONING_END, SOLUTION_END, SOLUTION_START, is_correct  # noqa: E402

MATH500 = ROOT / "tests" / "data" / "math500_answers.jsonl"
REFLEXIVE_TARGET = 0.99
LATENCY_TARGET_MS = 100.0


def load_references(path: Path = MATH500) -> list[str]:
    return [json.loads(line)["answer"] for line in path.read_text().splitlines() if line.strip()]


# ----------------------------------------------------------------------------- harmless rewriting
def _top_level_terms(expr: str) -> list[str] | None:
    """expr split into its signed terms at + and - outside brackets, or None if it is one term."""
    terms, depth, start = [], 0, 0
    for i, c in enumerate(expr):
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif c in "+-" and depth == 0 and i > 0:
            before = expr[:i].rstrip()
            if before and before[-1] not in "+-*/^_=,(" and not re.search(r"\\[A-Za-z]+$", before):
                terms.append(expr[start:i].strip())
                start = i
    terms.append(expr[start:].strip())
    return terms if len(terms) > 1 and all(terms) else None


def _reversed_sum(expr: str) -> str | None:
    terms = _top_level_terms(expr)
    if terms is None:
        return None
    terms = [t if t[0] in "+-" else "+ " + t for t in reversed(terms)]
    out = " ".join(terms)
    return out[1:].lstrip() if out.startswith("+") else out


def _respace(ref: str) -> tuple[str, str]:
    """No space where none is needed (a space after a command name stays), then one around operators."""
    tight = re.sub(r"(?<![A-Za-z])\s+|\s+(?=[^A-Za-z])", "", ref)
    # a comma between digit groups (10,080 or 10,\!080) separates thousands: spaces there would make a list
    return tight, re.sub(r"\s*([+=]|,(?!\\!|\d{3}\b)|(?<![\^{(\[,-])-)\s*", r" \1 ", tight).strip()


def variants(ref: str) -> list[tuple[str, str]]:
    """(kind, rewriting) pairs of one reference: the same answer, written as people and models write it."""
    out = [("bare", ref), ("inline math", f"${ref}$"), ("boxed", f"\\boxed{{{ref}}}")]
    tight, spaced = _respace(ref)
    out += [("spacing", tight), ("spacing", spaced)]
    if "\\frac" in ref:
        out += [("\\dfrac", ref.replace("\\frac", "\\dfrac")), ("\\cfrac", ref.replace("\\frac", "\\cfrac"))]
    if "\\dfrac" in ref:
        out.append(("\\frac", ref.replace("\\dfrac", "\\frac")))
    if "\\left" in ref:
        out.append(("\\left(", re.sub(r"\\(?:left|right)\s*", "", ref)))
    elif ref[:1] in "([" and ref[-1:] in ")]":
        out.append(("\\left(", f"\\left{ref[0]} {ref[1:-1]} \\right{ref[-1]}"))
    if "\\!" in ref:
        out += [("\\!", re.sub(r"\\!\s*", "", ref)), ("\\!", re.sub(r",\\!\s*", "{,}", ref))]
    elif re.fullmatch(r"\d{4,}", ref):
        grouped = f"{int(ref):,}"
        out += [("\\!", grouped.replace(",", ",\\!")), ("\\!", grouped.replace(",", "{,}"))]
    if "pmatrix" in ref:
        out.append(("bmatrix", ref.replace("pmatrix", "bmatrix")))
    sides = ref.split("=")
    if len(sides) == 2:
        out.append(("equation swapped", f"{sides[1].strip()} = {sides[0].strip()}"))
        right = _reversed_sum(sides[1].strip())
        left = _reversed_sum(sides[0].strip())
        if right or left:
            out.append(("sum reordered", f"{left or sides[0].strip()} = {right or sides[1].strip()}"))
    elif "," not in ref and "\\begin" not in ref:
        reordered = _reversed_sum(ref)
        if reordered:
            out.append(("sum reordered", reordered))
    items = [item.strip() for item in ref.split(",")]
    if len(items) > 1 and not re.search(r"[\\(\[{]", ref) and not re.fullmatch(r"[\d,]+", ref):
        out.append(("list reordered", ", ".join(reversed(items))))
    seen, unique = set(), []
    for kind, text in out:
        if (text not in seen and text != ref) or kind == "bare":
            seen.add(text)
            unique.append((kind, text))
    return unique


# ----------------------------------------------------------------------------- wrong copies
_PROTECTED = re.compile(r"\\(?:text|mbox)\s*\{[^{}]*\}|\\[A-Za-z]+|\{[a-z]*matrix\}")  # not variables


def wrong_copies(ref: str) -> list[tuple[str, str]]:
    """(kind, copy) pairs that must never equal the reference: a digit changed, a variable dropped,
    a letter added after the number, the base changed."""
    out = []
    for match in re.finditer(r"\d", ref):
        i = match.start()
        out.append(("digit changed", ref[:i] + str((int(ref[i]) + 1) % 10) + ref[i + 1 :]))
    protected = set()
    for match in _PROTECTED.finditer(ref):
        protected.update(range(match.start(), match.end()))
    for match in re.finditer(r"[A-Za-z]", ref):
        if match.start() not in protected:
            copy = (ref[: match.start()] + ref[match.end() :]).strip()
            if copy and copy != ref:
                out.append(("variable dropped", copy))
    if re.fullmatch(r"-?[\d.,]+", ref) and re.search(r"[1-9]", ref):  # 0x is 0: not a wrong copy
        out.append(("letter added", ref + "x"))
    base = re.search(r"_\{?(\d+)\}?$", ref)
    if base:
        out.append(("base changed", ref[: base.start(1)] + str(int(base.group(1)) + 1) + ref[base.end(1) :]))
    return out


# ----------------------------------------------------------------------------- measuring
def respond(answer: str) -> str:
    return f"working{REASONING_END}{SOLUTION_START}{answer}{SOLUTION_END}"


def timed_calls(pairs: list[tuple[str, str]]) -> tuple[list[bool], list[float], list[int]]:
    """is_correct on each (answer, reference) pair: verdicts, milliseconds per call, and the indices
    of the calls in which a math-verify judgement ran out of time."""
    verdicts, ms, timed_out = [], [], []
    for i, (pred, gold) in enumerate(pairs):
        timeouts = verifier.stats()["timeouts"]
        start = time.perf_counter()
        verdicts.append(is_correct(respond(pred), gold))
        ms.append((time.perf_counter() - start) * 1000)
        if verifier.stats()["timeouts"] > timeouts:
            timed_out.append(i)
    return verdicts, ms, timed_out


def percentiles(ms: list[float]) -> str:
    ordered = sorted(ms)
    p = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return f"p50 {p(0.50):6.2f}  p99 {p(0.99):6.2f}  max {ordered[-1]:6.2f} ms  (n={len(ms)})"


def fresh_worker() -> float:
    """Stop the worker and forget everything; start a new one and let it warm up. Seconds it took."""
    verifier.stop()
    verifier.clear_caches()
    start = time.perf_counter()
    verifier.start(warm=True)
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="the first 150 references only")
    args = parser.parse_args()
    references = load_references()[: 150 if args.quick else None]
    versions = ", ".join(
        f"{name} {metadata.version(name)}" for name in ("math-verify", "latex2sympy2_extended", "sympy")
    )
    print(
        f"{datetime.date.today()}  {platform.machine()} {os.cpu_count()} CPUs  Python {platform.python_version()}  {versions}"
    )
    print(f"deadline per call: {verifier.SYMBOLIC_DEADLINE_S * 1000:.0f} ms of worker time\n")

    equal_pairs = [(text, ref, kind) for ref in references for kind, text in variants(ref)]
    wrong_pairs = [(text, ref, kind) for ref in references for kind, text in wrong_copies(ref)]
    from bench.rewards import HOSTILE  # noqa: E402 - the hostile answers the reward benchmark uses

    hostile_pairs = [(h, ref, "hostile") for h in HOSTILE for ref in ("34", "\\frac{1}{2}", "(1, 2)", "2\\sqrt{2}")]
    calls = [(p, g) for p, g, _ in equal_pairs + wrong_pairs + hostile_pairs]

    startup = fresh_worker()
    before = verifier.stats()
    cold_verdicts, cold_ms, cold_timeouts = timed_calls(calls)
    cold_stats = {k: verifier.stats()[k] - before[k] for k in ("judged", "timeouts", "late")}
    warm_verdicts, warm_ms, _ = timed_calls(calls)

    thread_startup = fresh_worker()
    thread_result = {}

    def in_thread():
        thread_result["cold"] = timed_calls(calls)
        thread_result["warm"] = timed_calls(calls)

    thread = threading.Thread(target=in_thread)
    thread.start()
    thread.join()

    n_equal, n_wrong = len(equal_pairs), len(wrong_pairs)
    # the verdict that counts is the warm one: a cold timeout is reported below, separately
    equal_ok = warm_verdicts[:n_equal]
    wrong_ok = [not v for v in warm_verdicts[n_equal : n_equal + n_wrong]]
    print(
        f"reflexive: {sum(equal_ok)}/{n_equal} = {sum(equal_ok) / n_equal:.2%} equal to their reference (target >= {REFLEXIVE_TARGET:.0%})"
    )
    kinds = sorted({kind for *_, kind in equal_pairs}, key=lambda k: [kk for *_, kk in equal_pairs].index(k))
    for kind in kinds:
        flags = [ok for ok, (_, _, k) in zip(equal_ok, equal_pairs, strict=True) if k == kind]
        print(f"  {kind:17} {sum(flags):4}/{len(flags):<4}")
    refs_all_forms = sum(
        all(
            ok
            for ok, (_, g, k) in zip(equal_ok, equal_pairs, strict=True)
            if g == ref and k in ("bare", "inline math", "boxed")
        )
        for ref in references
    )
    print(f"  references equal to themselves bare, in $...$ and boxed: {refs_all_forms}/{len(references)}")
    for ok, (pred, gold, kind) in zip(equal_ok, equal_pairs, strict=True):
        if not ok:
            print(f"  refused ({kind}): {pred!r} for {gold!r}")
    print(f"\nwrong copies refused: {sum(wrong_ok)}/{n_wrong} (target: all)")
    for kind in ("digit changed", "variable dropped", "letter added", "base changed"):
        flags = [ok for ok, (_, _, k) in zip(wrong_ok, wrong_pairs, strict=True) if k == kind]
        print(f"  {kind:17} {sum(flags):4}/{len(flags):<4}")
    for ok, (pred, gold, kind) in zip(wrong_ok, wrong_pairs, strict=True):
        if not ok:
            print(f"  ACCEPTED ({kind}): {pred!r} for {gold!r}")
    disagreements = sum(a != b for a, b in zip(cold_verdicts, warm_verdicts, strict=True))
    print(
        f"\ncold pass: {cold_stats['judged']} math-verify judgements, {cold_stats['timeouts']} timeouts (judged wrong) "
        f"in {len(cold_timeouts)} calls, {disagreements} verdicts that differ from the warm pass"
    )
    for i in cold_timeouts:
        kind = (equal_pairs + wrong_pairs + hostile_pairs)[i][2]
        print(f"  timed out ({kind}): {calls[i][0][:60]!r} vs {calls[i][1][:40]!r}, warm verdict {warm_verdicts[i]}")

    print(f"\nlatency of is_correct, {len(calls)} calls (variants, wrong copies, hostile answers)")
    print(f"  worker start + warm-up: {startup:.2f} s (main), {thread_startup:.2f} s (thread); not in the calls below")
    rows = [
        ("main thread, cold", cold_ms),
        ("main thread, warm", warm_ms),
        ("worker thread, cold", thread_result["cold"][1]),
        ("worker thread, warm", thread_result["warm"][1]),
    ]
    for name, ms in rows:
        print(f"  {name:20} {percentiles(ms)}")
    symbolic = [i for i, (p, g) in enumerate(calls) if cold_ms[i] > 1.0]
    if symbolic:
        print(f"  {'cold, > 1 ms only':20} {percentiles([cold_ms[i] for i in symbolic])}")
    slowest = max(range(len(calls)), key=lambda i: cold_ms[i])
    print(f"  slowest cold call: {cold_ms[slowest]:.1f} ms on {calls[slowest][0][:50]!r} vs {calls[slowest][1][:50]!r}")
    print(f"  verifier counters: {verifier.stats()}")

    worst = max(max(ms) for _, ms in rows)
    ok = sum(equal_ok) / n_equal >= REFLEXIVE_TARGET and all(wrong_ok) and worst <= LATENCY_TARGET_MS
    print("PASS" if ok else "MISS: a target above is not met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
