"""The error tree and the exit codes.

    ChatCLIError                 base; `.message` is one readable line, `.exit_code` what `ask` exits with
    ├── UsageError               bad flags or arguments                        -> 2
    ├── ConfigError              invalid config file/env (names file, line, key) -> 2
    ├── InputError               unusable stdin (binary, not UTF-8, too large)  -> 2
    ├── NoProviderError          nothing usable: no key, no local extra          -> 2
    ├── StoreError               the history database cannot be used           -> 1
    └── ProviderError            a request failed before any reply text         -> 1
                                 `.kind` classifies it (auth, rate_limited, ...) and decides retrying

Only `cli.py` turns these into a line on stderr and an exit code. Messages never contain a key:
they are built from classified facts, and server text in them is passed through `redact()`.
"""

from __future__ import annotations

from enum import IntEnum
from typing import Literal


class ExitCode(IntEnum):
    OK = 0  # complete reply
    FAILED = 1  # the request failed and no reply text was produced
    USAGE = 2  # usage or configuration error
    PARTIAL = 3  # a partial reply was printed (any reason but stop and interrupted)
    INTERRUPTED = 130  # interrupted by the user


class ChatCLIError(Exception):
    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class UsageError(ChatCLIError):
    exit_code = ExitCode.USAGE


class ConfigError(ChatCLIError):
    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        where = ""
        if path is not None:
            where = path + (f":{line}" if line is not None else "")
            if key:
                where += f": {key}"
            where += ": "
        super().__init__(where + message)
        self.path = path
        self.line = line
        self.key = key


class InputError(ChatCLIError):
    exit_code = ExitCode.USAGE


class NoProviderError(ChatCLIError):
    exit_code = ExitCode.USAGE


class StoreError(ChatCLIError):
    exit_code = ExitCode.FAILED


ErrorKind = Literal[
    "auth",  # 401/403: key missing, wrong or not allowed
    "not_found",  # 404: wrong model or wrong URL path
    "rate_limited",  # 429 (retryable, honours retry-after)
    "quota",  # 429 insufficient_quota / billing: not retryable
    "overloaded",  # 529 / overloaded_error / 503 (retryable)
    "server",  # other 5xx (retryable)
    "context_length",  # the prompt does not fit the model's context
    "bad_request",  # other 4xx
    "connection",  # refused, DNS, reset before a reply (retryable)
    "timeout",  # no answer in time (retryable)
    "bad_response",  # 200 that is not an event stream, empty stream, malformed data before any text
]

RETRYABLE_KINDS: frozenset[str] = frozenset({"rate_limited", "overloaded", "server", "connection", "timeout"})


class ProviderError(ChatCLIError):
    """A request failed before any reply text. Safe to retry (if `retryable`) or to report."""

    exit_code = ExitCode.FAILED

    def __init__(self, kind: ErrorKind, message: str, *, provider: str, base_url: str | None = None,
                 status: int | None = None, retry_after: float | None = None) -> None:
        where = provider + (f" ({base_url})" if base_url else "")
        super().__init__(f"{where}: {message}")
        self.cause = message  # without the "provider (url): " prefix, for lines that name it already
        self.kind: ErrorKind = kind
        self.provider = provider
        self.base_url = base_url
        self.status = status
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.kind in RETRYABLE_KINDS
