"""The symbolic worker, caller's side: math-verify in one child process (verifier/serve.py), shared by
every thread of this process, private to it (a fork starts its own), stopped at exit.

Why a process: math-verify's own timeouts use signal.alarm, which works only in the main thread, and
sympy cannot be interrupted from another thread. Why CPU seconds: the worker counts the CPU time each
judgement uses (limits.SYMBOLIC_CPU_S per answers_equal call), and a busy machine slows the clock, not
the count, so the verdict does not depend on load. A judgement that runs out of it, a worker that does
not answer within the wall-clock backstop (limits.SYMBOLIC_BACKSTOP_S: frozen, or starved of CPU), or a
worker that cannot start, leave the verdict undecided: `Undecided` is raised and answers_equal returns
None. The shape screen (shape.py) keeps real answers far from these limits.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path

from . import limits

_log = logging.getLogger("verifier")
_SERVE = Path(__file__).resolve().parent / "serve.py"


class Undecided(Exception):
    """No verdict: the CPU budget, the wall-clock backstop or the worker ran out."""


class Worker:
    """math-verify in a child process: started on demand (or by start()), restarted when it dies or
    hangs; every start waits until the worker has warmed up, so a judgement never pays for it."""

    def __init__(self):
        self.script = _SERVE  # what the worker runs (a test may serve a stand-in judge instead)
        self.lock = threading.Lock()
        self.verdicts: dict[tuple[str, str], bool] = {}  # (gold, pred) -> verdict; dict ops are atomic
        self.counts = dict.fromkeys(
            ["judged", "cached", "timeouts", "undecided", "restarts", "errors", "unavailable", "cpu_s", "start_s"], 0
        )
        self._forget_process()
        self._started_ever = False
        os.register_at_fork(after_in_child=self._after_fork) if hasattr(os, "register_at_fork") else None
        atexit.register(self.stop)

    def _forget_process(self):
        self.died = False
        self.proc = None
        self.warm = False
        self._buffer = b""
        self._next_id = 0
        self.retry_at = 0.0

    def _after_fork(self):
        """A forked child must not talk to (or kill) its parent's worker; it starts its own on demand."""
        self.lock = threading.Lock()
        if self.proc is not None:  # our copies of the pipes only; the parent keeps its worker
            for stream in (self.proc.stdin, self.proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
        self._forget_process()
        self._started_ever = False

    # -- lifecycle (callers hold the lock)
    def ensure_started(self) -> bool:
        """A running, warmed-up worker; False when none can be started now."""
        if self.proc is not None and self.proc.poll() is None:
            return True
        if self.proc is not None:  # it died since the last judgement
            self.counts["errors"] += 1
            self.kill()
        if time.monotonic() < self.retry_at:
            return False
        return self._start()

    def _start(self) -> bool:
        command = [sys.executable, "-u", str(self.script), str(limits.FLOAT_ROUNDING)]
        started = time.monotonic()
        try:
            self.proc = subprocess.Popen(
                command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=dict(os.environ, PYTHONUNBUFFERED="1")
            )
        except OSError as error:
            _log.warning("verifier worker could not start (%s); symbolic answers are undecided", error)
            self.retry_at = time.monotonic() + limits.WORKER_RETRY_S
            self.proc = None
            return False
        self.counts["restarts"] += self._started_ever
        self._started_ever = True
        line = self._read_line(started + limits.WORKER_START_TIMEOUT_S)
        if line is None or b"ready" not in line:
            _log.warning(
                "verifier worker did not start; symbolic answers are undecided for %.0f s", limits.WORKER_RETRY_S
            )
            self.kill()
            self.retry_at = time.monotonic() + limits.WORKER_RETRY_S
            return False
        self.counts["start_s"] = round(time.monotonic() - started, 3)
        return True

    def kill(self) -> None:
        """Kill the worker now (its judgement, if any, is undecided)."""
        proc, self.proc = self.proc, None
        if proc is not None:
            for stream in (proc.stdin, proc.stdout):
                try:
                    stream.close()
                except OSError:
                    pass
            if proc.poll() is None:
                proc.kill()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        retry_at = self.retry_at
        self._forget_process()
        self.retry_at = retry_at

    def stop(self) -> None:
        """Stop the worker: it exits when its input closes, or is killed."""
        proc = self.proc
        if proc is None:
            return
        try:
            proc.stdin.close()
            proc.wait(timeout=1)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()

    # -- protocol: one JSON line per message
    def _read_line(self, until: float) -> bytes | None:
        """The next line from the worker, or None at the wall-clock limit or when the worker is gone."""
        while b"\n" not in self._buffer:
            if self.proc is None:
                return None
            remaining = max(0.0, until - time.monotonic())
            fd = self.proc.stdout.fileno()
            try:
                readable, _, _ = select.select([fd], [], [], remaining)
            except (OSError, ValueError):
                return None
            if not readable:
                return None
            chunk = os.read(fd, 65536)
            if not chunk:  # the worker died
                self.died = True
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line

    # -- the judgement
    def judge(self, gold: str, pred: str, budget: list) -> bool:
        """math-verify's verdict on (gold, pred). budget[0]: the worker CPU seconds this call may still
        spend; what the judgement used is taken off it. Raises Undecided when there is no verdict."""
        cached = self.verdicts.get((gold, pred))
        if cached is not None:
            self.counts["cached"] += 1
            return cached
        if budget[0] <= 0:
            self.counts["timeouts"] += 1
            raise Undecided("CPU budget spent")
        if not self.lock.acquire(timeout=limits.LOCK_TIMEOUT_S):
            raise Undecided("waited too long for other threads' judgements")
        try:
            cached = self.verdicts.get((gold, pred))  # another thread may have judged it meanwhile
            if cached is not None:
                return cached
            for _attempt in range(2):  # a worker that died during the judgement is replaced once
                if not self.ensure_started():
                    self.counts["unavailable"] += 1
                    raise Undecided("no worker")
                reply = self._exchange(gold, pred, budget)
                if reply is not None:
                    return reply
            raise Undecided("the worker died twice")
        finally:
            self.lock.release()

    def _exchange(self, gold: str, pred: str, budget: list) -> bool | None:
        """One job; the verdict, or None when the worker died (replace it and retry)."""
        job = self._next_id = self._next_id + 1
        message = json.dumps([job, budget[0], gold, pred]) + "\n"
        try:
            os.write(self.proc.stdin.fileno(), message.encode())
        except OSError:
            self.counts["errors"] += 1
            self.kill()
            return None
        self.counts["judged"] += 1
        until = time.monotonic() + limits.SYMBOLIC_BACKSTOP_S
        self.died = False
        while True:
            line = self._read_line(until)
            if line is None:
                alive = not self.died and self.proc is not None and self.proc.poll() is None
                self.kill()
                if alive:  # frozen, or starved of CPU: the backstop
                    self.counts["timeouts"] += 1
                    raise Undecided("no reply within the wall-clock backstop")
                self.counts["errors"] += 1
                return None
            try:
                message = json.loads(line)
            except ValueError:
                continue
            if isinstance(message, dict):  # {"warm": true}
                self.warm = self.warm or "warm" in message
                continue
            reply_job, verdict, cpu = message
            if reply_job != job:
                continue
            budget[0] -= cpu
            self.counts["cpu_s"] = round(self.counts["cpu_s"] + cpu, 6)
            if verdict == "timeout":
                self.counts["timeouts"] += 1
                raise Undecided("CPU budget spent")
            if verdict == "error":  # math-verify failed on this input: deterministic, so not equal
                self.counts["errors"] += 1
                verdict = False
            if len(self.verdicts) > 100_000:
                self.verdicts.clear()
            self.verdicts[(gold, pred)] = verdict
            return verdict

    def clear(self) -> None:
        """Forget every verdict, here and in the worker (for benchmarks that measure cold calls)."""
        self.verdicts.clear()
        with self.lock:
            if self.proc is not None:
                try:
                    os.write(self.proc.stdin.fileno(), b'{"clear": true}\n')
                except OSError:
                    self.kill()


WORKER = Worker()


def start(warm: bool = True) -> None:
    """Start the worker now and return when it is ready and (warm=True) has judged all its warm-up
    pairs, so that no reward call pays for sympy's lazy imports. Call once before training starts."""
    with WORKER.lock:
        if not WORKER.ensure_started() or not warm:
            return
        until = time.monotonic() + limits.WORKER_START_TIMEOUT_S
        while not WORKER.warm:
            line = WORKER._read_line(until)
            if line is None:
                return
            try:
                WORKER.warm = WORKER.warm or "warm" in json.loads(line)
            except (ValueError, TypeError):
                continue


def stop() -> None:
    """Stop the worker; the next symbolic judgement starts a fresh one."""
    with WORKER.lock:
        WORKER.stop()


def stats() -> dict:
    """Counters since import: judged (sent to math-verify), cached, undecided (calls that returned None),
    timeouts (judgements past their CPU budget or the backstop), restarts, errors, unavailable (no
    worker), cpu_s (worker CPU seconds used), start_s (seconds the last start took)."""
    return dict(WORKER.counts)
