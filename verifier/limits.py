"""Every bound the verifier applies, in one place. Code reads them as `limits.NAME` at call time, so a
test or a benchmark may change one with monkeypatch.

The bounds on shape (characters, digits, exponents) decide what reaches sympy at all; they are what
keeps a call fast. The CPU budget is counted in the worker's own CPU seconds, which a busy machine
does not change, so a verdict does not depend on load. The wall-clock limits are backstops for a
worker that is frozen or starved; when one fires the verdict is undecided (None), never "wrong".
"""

MAX_ANSWER_CHARS = 300  # a longer "final answer" is not an answer; it is judged wrong unread
MAX_SYMBOLIC_CHARS = 200  # longest cleaned answer handed to math-verify
MAX_DIGITS = 40  # longest digit run accepted anywhere in an answer
MAX_EXPONENT = 10_000  # largest number in an exponent: 2^{100} fine, 2^{100000000} not (towers never)
MAX_SYMBOLIC_EXPONENT = 64  # largest exponent on a base with a variable: sympy expands (x-a)^{200} for 0.3 s
MAX_SYMBOLS = 6  # most distinct variables in an answer handed to math-verify
MAX_OPERATORS = 40  # most operators and commands in an answer handed to math-verify

SYMBOLIC_CPU_S = 1.0  # worker CPU seconds one answers_equal call may spend; past it: undecided (None)
SYMBOLIC_BACKSTOP_S = 3.0  # wall seconds one judgement may take (a frozen or starved worker): undecided
WORKER_START_TIMEOUT_S = 120.0  # a start (Python + sympy + math-verify imports + warm-up) may take this
WORKER_RETRY_S = 30.0  # after a failed start, symbolic answers are undecided for this long, then a retry
LOCK_TIMEOUT_S = 60.0  # a caller waiting this long for other threads' judgements gives up (undecided)
FLOAT_ROUNDING = 12  # decimal places to which a decimal must agree with an exact irrational value
