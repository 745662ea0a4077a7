"""Measure the verifier on the 500 MATH-500 reference answers (tests/data/math500_answers.jsonl) and on
other graders' test cases (tests/data/other_graders_cases.jsonl): how many references equal themselves
under harmless rewriting, how many wrong copies are refused, how often it agrees with the other graders,
and how long each call takes after the worker's start, on an idle machine and with every core busy.

    python bench/verifier.py            # all of it (a few minutes on a 2-core machine)
    python bench/verifier.py --quick    # the first 150 references

Targets (issue #16): every reference equal to itself and its rewritings, every wrong copy refused,
agreement with the other graders >= 97 % with no wrong answer accepted, and per call p99 <= 20 ms and
worst <= 1 s, idle and busy (spinning processes keep every core busy), with the verdicts identical.
Exits 1 if a target is missed.

The rewritings and the wrong copies are generated here (and imported by the tests), so the benchmark
and the tests measure the same thing.
"""

from __future__ import annotations

import argparse
import datetime
import json
import multiprocessing
import os
import platform
import re
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
import verifier
from rewards import REASONING_END, SOLUTION_END, SOLUTION_START, is_correct

MATH500 = ROOT / "tests" / "data" / "math500_answers.jsonl"
OTHER_GRADERS = ROOT / "tests" / "data" / "other_graders_cases.jsonl"
AGREEMENT_TARGET = 0.97
P99_TARGET_MS = 20.0
WORST_TARGET_MS = 1000.0


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


def timed_calls(pairs: list[tuple[str, str]]) -> tuple[list, list[float], list[float]]:
    """is_correct on each (answer, reference) pair: verdicts (True/False/None), wall milliseconds per
    call, and CPU milliseconds per call (this process's and the worker's: what load does not stretch)."""
    verdicts, ms, cpu_ms = [], [], []
    for pred, gold in pairs:
        worker_cpu, cpu, start = verifier.stats()["cpu_s"], time.process_time(), time.perf_counter()
        verdicts.append(is_correct(respond(pred), gold))
        ms.append((time.perf_counter() - start) * 1000)
        cpu_ms.append((time.process_time() - cpu + verifier.stats()["cpu_s"] - worker_cpu) * 1000)
    return verdicts, ms, cpu_ms


def percentiles(ms: list[float]) -> tuple[float, float, float]:
    ordered = sorted(ms)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]
    return at(0.50), at(0.99), ordered[-1]


def _spin(stop_at: float) -> None:
    while time.monotonic() < stop_at:
        pass


def busy(n: int):
    """n processes that keep a core each busy until stopped."""
    context = multiprocessing.get_context("spawn")
    spinners = [context.Process(target=_spin, args=(time.monotonic() + 3600,), daemon=True) for _ in range(n)]
    for spinner in spinners:
        spinner.start()
    return spinners


def cold_pass(calls):
    """Forget every verdict and parse (here and in the worker), then judge every call once."""
    verifier.clear_caches()
    return timed_calls(calls)


def load_other_graders() -> list[dict]:
    return [json.loads(line) for line in OTHER_GRADERS.read_text().splitlines() if line.strip()]


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
    print(f"worker CPU budget per call: {verifier.limits.SYMBOLIC_CPU_S * 1000:.0f} ms; wall-clock backstop "
          f"{verifier.limits.SYMBOLIC_BACKSTOP_S:.0f} s per judgement\n")  # fmt: skip

    equal_pairs = [(text, ref, kind) for ref in references for kind, text in variants(ref)]
    wrong_pairs = [(text, ref, kind) for ref in references for kind, text in wrong_copies(ref)]
    from bench.rewards import HOSTILE

    hostile_pairs = [(h, ref, "hostile") for h in HOSTILE for ref in ("34", "\\frac{1}{2}", "(1, 2)", "2\\sqrt{2}")]
    graders = load_other_graders()
    grader_pairs = [(c["pred"], c["gold"], c["split"]) for c in graders]
    sets = {"MATH-500": equal_pairs + wrong_pairs, "hostile": hostile_pairs}

    start = time.perf_counter()
    verifier.stop()
    verifier.start()
    print(
        f"worker start and warm-up: {time.perf_counter() - start:.2f} s (once, before training; not in the calls below)"
    )
    results = {}
    for load in ("idle", "busy"):
        spinners = busy(os.cpu_count() or 2) if load == "busy" else []
        try:
            for name, pairs in sets.items():
                results[load, name] = cold_pass([(p, g) for p, g, _ in pairs])
        finally:
            for spinner in spinners:
                spinner.kill()
                spinner.join()

    grader_verdicts = cold_pass([(p, g) for p, g, _ in grader_pairs])[0]
    verdicts = results["idle", "MATH-500"][0]
    n_equal, n_wrong = len(equal_pairs), len(wrong_pairs)
    equal_ok = [v is True for v in verdicts[:n_equal]]
    wrong_ok = [v is False for v in verdicts[n_equal : n_equal + n_wrong]]
    print(f"\nreflexive: {sum(equal_ok)}/{n_equal} rewritings equal to their reference")
    kinds = list(dict.fromkeys(kind for *_, kind in equal_pairs))
    for kind in kinds:
        flags = [ok for ok, (_, _, k) in zip(equal_ok, equal_pairs, strict=True) if k == kind]
        print(f"  {kind:17} {sum(flags):4}/{len(flags):<4}")
    for ok, (pred, gold, kind) in zip(equal_ok, equal_pairs, strict=True):
        if not ok:
            print(f"  refused ({kind}): {pred!r} for {gold!r}")
    print(f"wrong copies refused: {sum(wrong_ok)}/{n_wrong}")
    for ok, (pred, gold, kind) in zip(wrong_ok, wrong_pairs, strict=True):
        if not ok:
            print(f"  ACCEPTED ({kind}): {pred!r} for {gold!r}")

    print(f"\nother graders' cases ({OTHER_GRADERS.name}; Math-Verify, NeMo-Skills, hendrycks/math tests)")
    paid = []
    agreement_ok = True
    for split in ("dev", "held_out", None):
        rows = [(c, v) for c, v in zip(graders, grader_verdicts, strict=True) if split in (None, c["split"])]
        agree = sum(bool(v) == c["equal"] for c, v in rows)
        accepted = [c for c, v in rows if v and not c["equal"] and "note" not in c]
        undisputed = [(c, v) for c, v in rows if "note" not in c]
        agree_undisputed = sum(bool(v) == c["equal"] for c, v in undisputed)
        label = {"dev": "dev (seen while building)", "held_out": "held out (no longer unseen)", None: "all"}[split]
        print(f"  {label:26} agree {agree}/{len(rows)} = {agree / len(rows):.1%}; without the cases the graders "
              f"dispute {agree_undisputed}/{len(undisputed)} = {agree_undisputed / len(undisputed):.1%}; "
              f"wrong answers accepted: {len(accepted)}")  # fmt: skip
        if split is None:
            paid, agreement_ok = accepted, agree / len(rows) >= AGREEMENT_TARGET
    for c in paid:
        print(f"  ACCEPTED: {c['pred']!r} for {c['gold']!r} ({c['source']})")

    print("\nlatency of is_correct per call, cold (caches cleared), after the worker's start")
    worst = 0.0
    p99_ok = True
    for (load, name), (_, ms, cpu_ms) in results.items():
        p50, p99, top = percentiles(ms)
        worst = max(worst, top)
        p99_ok = p99_ok and p99 <= P99_TARGET_MS
        cpu = percentiles(cpu_ms)
        print(f"  {load:5} {name:9} wall p50 {p50:6.2f}  p99 {p99:6.2f}  max {top:7.1f} ms  |  "
              f"CPU p50 {cpu[0]:6.2f}  p99 {cpu[1]:6.2f}  max {cpu[2]:7.1f} ms  (n={len(ms)})")  # fmt: skip
    same = {name: results["idle", name][0] == results["busy", name][0] for name in sets}
    undecided = sum(v is None for (vs, *_) in results.values() for v in vs)
    print(f"  verdicts identical idle and busy: {same}; undecided verdicts: {undecided}")
    print(
        f"  load average after the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (wall times need a quiet machine)"
    )
    print(f"  verifier counters: {verifier.stats()}")

    ok = (
        all(equal_ok)
        and all(wrong_ok)
        and not paid
        and agreement_ok
        and p99_ok
        and worst <= WORST_TARGET_MS
        and all(same.values())
        and undecided == 0
    )
    print("PASS" if ok else "MISS: a target above is not met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
