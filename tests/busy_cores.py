"""Run a command with every core kept busy: one spinning process per core beside it, started before and
stopped after, so that a test whose outcome depends on load shows it (CI runs the modules that touch the
verifier's worker, signals and resume this way; tests/README.md says how the suite was checked).

    python tests/busy_cores.py [--spinners N] -- COMMAND...

Exits with the command's status. The spinners stop by themselves after --limit seconds (default 3600), or
when this process dies, so none outlives a killed CI job.
"""

import argparse
import multiprocessing
import os
import subprocess
import sys
import time


def spin(parent: int, stop_at: float) -> None:
    while time.monotonic() < stop_at and os.getppid() == parent:
        for _ in range(100_000):
            pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spinners", type=int, default=os.cpu_count() or 2, help="spinning processes (one a core)")
    parser.add_argument("--limit", type=float, default=3600.0, help="seconds after which the spinners stop anyway")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command given (put it after --)")
    stop_at = time.monotonic() + args.limit
    spinners = [
        multiprocessing.Process(target=spin, args=(os.getpid(), stop_at), daemon=True) for _ in range(args.spinners)
    ]
    for spinner in spinners:
        spinner.start()
    print(f"busy_cores: {args.spinners} spinning processes beside: {' '.join(command)}", flush=True)
    try:
        return subprocess.call(command)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.join()


if __name__ == "__main__":
    sys.exit(main())
