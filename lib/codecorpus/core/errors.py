"""Errors a user can fix. Jobs print them as one line and exit non-zero, without a stack trace."""


class UserError(Exception):
    """Something about the input, output or config is wrong; the message says what."""


class ConfigError(UserError):
    """A config file or --set override is invalid."""


class EmptyInput(UserError):
    """An input holds nothing a stage can work on (e.g. a tokenizer stage's split has no text)."""


class StageSkipped(Exception):
    """A stage cannot run on this input (raised by `build`, or by the registry when an input was
    never made); the stage is recorded as skipped, with the reason, and the pipeline goes on."""
