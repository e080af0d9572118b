"""Assertions both provider test modules make about a stream's events and a provider's errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from chatcli.errors import ProviderError
from chatcli.events import Event, Finish, TextDelta


def text_of(events: Sequence[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def finish_of(events: Sequence[Event]) -> Finish:
    """The one Finish, which must be the last event."""
    finishes = [e for e in events if isinstance(e, Finish)]
    assert len(finishes) == 1 and events[-1] is finishes[0], events
    return finishes[0]


def expect_error(call: Callable[[], object], kind: str, *, canary: str, provider: str) -> ProviderError:
    """`call` raises a ProviderError of `kind`: one line, naming the provider, never the key."""
    with pytest.raises(ProviderError) as info:
        call()
    err = info.value
    assert err.kind == kind, err.message
    assert canary not in str(err) and canary[-16:] not in str(err)
    assert "\n" not in str(err)
    assert str(err).startswith(provider)
    return err
