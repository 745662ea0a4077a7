"""A stand-in verifier worker (verifier/serve.py's protocol and CPU limit) whose judgement never ends: it
spins until the job's CPU budget runs out. Lets a test see the budget spent on any machine, fast or slow,
without racing a real judgement against a tiny limit (tests/test_verifier.py)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "verifier"))
import serve  # noqa: E402


def spin_forever(gold: str, pred: str) -> bool:
    while True:
        pass


if __name__ == "__main__":
    serve.serve(serve.protocol_output(), spin_forever, warm_up=[])
