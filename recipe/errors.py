"""The one exception the recipe raises on purpose."""


class SetupError(Exception):
    """A problem with the settings, the data or the machine, with what to do about it.

    train_grpo.py prints it as `error: ...` and exits with status 2, without a traceback."""
