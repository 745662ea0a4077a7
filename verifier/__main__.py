"""python -m verifier ANSWER REFERENCE: judge one answer as the rewards do."""

import argparse
import sys

from . import answers_equal, clean


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m verifier", description="Judge one answer against a reference.")
    parser.add_argument("pred", help="the answer, e.g. '\\frac{1}{2}'")
    parser.add_argument("gold", help="the reference, e.g. 0.5")
    args = parser.parse_args(argv)
    verdict = answers_equal(args.pred, args.gold)
    words = {True: "equal", False: "not equal", None: "undecided"}[verdict]
    print(f"{clean(args.pred)!r} vs {clean(args.gold)!r}: {words}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
