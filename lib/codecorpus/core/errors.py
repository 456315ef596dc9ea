"""Errors a user can fix. Jobs print them as one line and exit non-zero, without a stack trace."""


class UserError(Exception):
    """Something about the input, output or config is wrong; the message says what."""


class ConfigError(UserError):
    """A config file or --set override is invalid."""
