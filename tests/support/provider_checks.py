"""Assertions both provider test modules make about a stream's events and a provider's errors."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pytest

from chatcli.errors import ProviderError
from chatcli.events import Event, Finish, Message, TextDelta


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


def check_rehearsal(provider: Any, server: Any, reply: Any, canary: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """`warm()` plays one whole reply through the real SDK against an in-memory stand-in
    (`httpx2.MockTransport`; `rehearsed`), with a placeholder key, sends nothing to the configured
    server, and the first real request after it is sent and answered as usual."""
    from chatcli.providers._client import REHEARSAL_KEY

    provider.warm()
    assert not provider.rehearsed  # only on request: `ask` sends its real request at once
    assert provider.rehearsal_requests == []
    provider.warm(rehearse=True)
    assert provider.rehearsed, "the warm-up rehearsal did not complete a reply"
    assert server.requests == [], "the rehearsal reached the configured server"
    [rehearsal] = provider.rehearsal_requests
    received = b"".join(name + b": " + value + b"\n" for name, value in rehearsal.headers.raw) + rehearsal.content
    assert rehearsal.method == "POST", rehearsal  # a whole request the SDK built and sent
    assert REHEARSAL_KEY.encode() in received and canary.encode() not in received
    server.add(reply)
    events = list(provider.stream([Message("user", "after the rehearsal")], model="m"))
    assert text_of(events) == "real reply" and finish_of(events).reason == "stop"
    assert len(server.requests) == 1
    sent = server.requests[0]
    assert sent.json["model"] == "m" and "after the rehearsal" in str(sent.json["messages"])
    assert canary in str(sent.headers)  # the real client still carries the key


def check_failed_rehearsal_is_harmless(provider: Any, server: Any, reply: Any) -> None:
    """A rehearsal that cannot complete (here: a reply the SDK cannot parse) leaves `rehearsed`
    False, raises nothing, and changes nothing for the real request."""
    provider.rehearsal_reply = lambda: b"data: {not json\n\n"
    provider.warm(rehearse=True)
    assert not provider.rehearsed
    assert server.requests == []
    server.add(reply)
    events = list(provider.stream([Message("user", "hi")], model="m"))
    assert text_of(events) == "real reply" and finish_of(events).reason == "stop"
