"""Typed reads of an environment mapping with environs, and one line naming every bad value.

Both sides' settings objects (queue_jobs.config.settings, webapp.config) read through an EnvReader:

    env = EnvReader(environ)              # None: os.environ
    timeout = env.seconds("JOB_TIMEOUT_S", 600.0)
    ...
    env.check()                           # SettingsError("JOB_TIMEOUT_S: Not a valid number ('x')")

A bad value is collected rather than raised at once, so that one start reports every bad
variable; until check() a read of it gives its default, so code that derives one setting
from another never meets a value of the wrong type.
"""

from __future__ import annotations

import builtins
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from environs import Env, EnvValidationError
from marshmallow.validate import OneOf


class SettingsError(ValueError):
    """A setting a process cannot start with; the message is one line that names it."""


class _MappingEnv(Env):
    """environs' Env over a given mapping: tests, `make run` and create_app's callers pass
    their own, and Env itself only ever reads os.environ. _get_value is the one place Env
    looks a name up (environs' own FileAwareEnv overrides it the same way); a copy, not
    os.environ swapped for the duration, so threads reading settings at once stay apart."""

    def __init__(self, mapping: Mapping[str, str]) -> None:
        # Not eager: every bad variable is collected, and seal() reports them together.
        super().__init__(eager=False)
        self.mapping = mapping

    def _get_value(self, env_key: str, default: Any) -> Any:
        return self.mapping.get(env_key, default)


class EnvReader:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        self._env = _MappingEnv(dict(os.environ if environ is None else environ))

    def str(self, name: builtins.str, default: builtins.str) -> builtins.str:
        return self._read(self._env.str, name, default)

    def choice(self, name: builtins.str, default: builtins.str,
               choices: tuple[builtins.str, ...]) -> builtins.str:
        return self._read(self._env.str, name, default, validate=OneOf(choices))

    def int(self, name: builtins.str, default: builtins.int, *,
            validate: Callable[[Any], Any] | None = None,
            empty_is_default: bool = False) -> builtins.int:
        """empty_is_default: set but empty means the default, for the settings that were
        always read that way (`env.get(NAME) or DEFAULT`); elsewhere empty is not a number."""
        if empty_is_default and self._env.mapping.get(name) == "":
            return default
        return self._read(self._env.int, name, default, validate=validate)

    def bool(self, name: builtins.str, default: builtins.bool) -> builtins.bool:
        """true/false, 1/0, yes/no, on/off; set but empty means the default."""
        if self._env.mapping.get(name) == "":
            return default
        return self._read(self._env.bool, name, default)

    def seconds(self, name: builtins.str, default: builtins.float) -> builtins.float:
        """A float as float() reads it: marshmallow's Float refuses inf and nan unless told,
        and a setting that took them before must still take them."""
        return self._read(self._env.float, name, default, allow_nan=True)

    def _read(self, parse: Callable[..., Any], name: builtins.str, default: Any,
              **options: Any) -> Any:
        value = parse(name, default, **options)
        # None: environs has recorded the bad value for check(); go on with the default.
        return default if value is None else value

    def check(self) -> None:
        """After the last read: SettingsError naming each bad variable and its value."""
        try:
            self._env.seal()
        except EnvValidationError as error:
            # Only typed values can be bad (numbers), never a free-form string such as a
            # key or a token: quoting the value cannot leak a secret.
            messages = error.error_messages
            assert isinstance(messages, Mapping)
            raise SettingsError("; ".join(
                f"{name}: {' '.join(m.rstrip('.') for m in found)} "
                f"({self._env.mapping.get(name)!r})"
                for name, found in messages.items())) from None


@contextmanager
def exit_on_bad_settings(program: builtins.str) -> Iterator[None]:
    """Around a process's first reading of its settings: a bad value ends the process with
    one line on stderr and exit status 2 (a usage error, as argparse's), not a traceback."""
    try:
        yield
    except SettingsError as error:
        print(f"{program}: {error}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
