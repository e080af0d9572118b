"""Context-window budgeting: known windows, the estimate, and trimming whole exchanges."""

from __future__ import annotations

import pytest

from chatcli.context import (
    DEFAULT_REPLY_RESERVE,
    MESSAGE_OVERHEAD,
    context_window_for,
    conversation_tokens,
    estimate_messages,
    estimate_tokens,
    make_trimmer,
    prompt_budget,
    trim_messages,
)
from chatcli.events import Finish, Message, Notice, TextDelta
from chatcli.session import CONTINUE_PROMPT, Session
from chatcli.turn import Turn
from tests.support.fakes import FakeProvider


@pytest.mark.parametrize("model, provider, window", [
    ("gpt-4o", "openai", 128_000),
    ("gpt-4o-mini-2024-07-18", "openai", 128_000),
    ("gpt-4.1-nano", "openai", 1_047_576),
    ("gpt-5-mini", "openai", 400_000),
    ("gpt-4", "openai", 8_192),
    ("gpt-4-turbo", "openai", 128_000),
    ("claude-sonnet-4-5", "anthropic", 200_000),
    ("anthropic/claude-3.5-haiku", "openrouter", 200_000),
    ("SmolLM2-135M-Instruct", "local", 8_192),
    ("/models/SmolLM2-135M-Instruct-Q8_0.gguf", "local", 8_192),
    ("smollm2:135m", "ollama", 8_192),
    ("llama3.1:8b", "ollama", 131_072),
    ("llama3:8b", "ollama", 8_192),
    ("totally-unknown-model", "vllm", None),
])
def test_known_windows(model: str, provider: str, window: int | None) -> None:
    assert context_window_for(model, provider) == window


def test_configured_windows_win() -> None:
    assert context_window_for("gpt-4o", "openai", configured=5000) == 5000
    assert context_window_for("mine", "vllm", overrides={"vllm:mine": 7000}) == 7000
    assert context_window_for("mine", "vllm", overrides={"mine": 6000}) == 6000
    assert context_window_for("gpt-4o", "openai", overrides={"other": 1}) == 128_000


def test_estimate() -> None:
    assert estimate_tokens("") == 0
    assert estimate_tokens("abcd") == 1
    assert estimate_tokens("abcde") == 2
    assert estimate_tokens("x" * 400) == 100
    assert estimate_tokens("日本語のテキスト") == 8  # one token per non-ASCII character: conservative
    assert estimate_messages([Message("user", "x" * 40)], "y" * 40) == 10 + 10 + 2 * MESSAGE_OVERHEAD


def test_budget() -> None:
    assert prompt_budget(100_000, 1000) == 95_000 - 1000
    assert prompt_budget(8192, None) == int(8192 * 0.95) - 2048
    assert prompt_budget(1_000_000, None) == 950_000 - DEFAULT_REPLY_RESERVE


def _msgs(*pairs: tuple[str, str]) -> list[Message]:
    return [Message(role, text) for role, text in pairs]  # type: ignore[arg-type]


def _history(n: int, size: int = 400) -> list[Message]:
    messages: list[Message] = []
    for i in range(n):
        messages.append(Message("user", f"q{i} " + "x" * size))
        messages.append(Message("assistant", f"a{i} " + "y" * size))
    messages.append(Message("user", "last question"))
    return messages


def test_unknown_window_keeps_everything() -> None:
    messages = _history(50, 10_000)
    kept, dropped = make_trimmer(None, None)(messages, "system")
    assert kept == messages and dropped == 0


def test_fitting_history_is_untouched() -> None:
    messages = _history(3)
    assert make_trimmer(128_000, 1000)(messages, None) == (messages, 0)


def test_drops_oldest_whole_exchanges_and_counts_messages() -> None:
    messages = _history(10)  # each message ~ 101-102 tokens + overhead
    per_exchange = 2 * (estimate_tokens("q0 " + "x" * 400) + MESSAGE_OVERHEAD)
    budget = 3 * per_exchange + 50
    kept, dropped = trim_messages(messages, None, budget)
    assert dropped == 14 and len(kept) == 7
    assert kept[0] == Message("user", "q7 " + "x" * 400)
    assert kept[-1] == Message("user", "last question")
    assert [m.role for m in kept] == ["user", "assistant"] * 3 + ["user"]
    assert estimate_messages(kept) <= budget


def test_system_prompt_counts_against_the_budget() -> None:
    messages = _history(10)
    budget = 3 * 2 * (102 + MESSAGE_OVERHEAD) + 50
    without = trim_messages(messages, None, budget)[1]
    with_system = trim_messages(messages, "s" * 800, budget)[1]
    assert with_system > without


def test_last_user_message_is_kept_even_if_alone_too_big() -> None:
    messages = [*_history(2), Message("assistant", "z")][:-1]
    messages[-1] = Message("user", "q" * 100_000)
    kept, dropped = trim_messages(messages, None, 1000)
    assert kept == [messages[-1]] and dropped == 4


def test_prefill_continuation_keeps_the_partial_with_its_question() -> None:
    messages = _msgs(("user", "old " * 500), ("assistant", "old answer " * 300),
                     ("user", "question"), ("assistant", "partial reply"))
    kept, dropped = trim_messages(messages, None, 200)
    assert kept == messages[2:] and dropped == 2


def test_continue_prompt_keeps_the_exchange_it_continues() -> None:
    messages = _msgs(("user", "old " * 500), ("assistant", "old answer " * 300),
                     ("user", "question"), ("assistant", "partial reply"), ("user", CONTINUE_PROMPT))
    kept, dropped = trim_messages(messages, None, 200)
    assert kept == messages[2:] and dropped == 2


def test_a_leading_assistant_message_goes_first() -> None:
    messages = _msgs(("assistant", "stray " * 200), ("user", "q1"), ("assistant", "a1"), ("user", "q2"))
    kept, dropped = trim_messages(messages, None, 100)
    assert kept[0].role == "user" and dropped == 1


def test_session_turns_the_count_into_a_notice() -> None:
    provider = FakeProvider()
    turns: list[Turn] = []
    for i in range(20):
        turns.append(Turn("user", f"q{i} " + "x" * 2000))
        turns.append(Turn("assistant", f"a{i} " + "y" * 2000, finish_reason="stop"))
    session = Session(provider, model="smollm2", turns=turns, max_tokens=512,
                      trimmer=make_trimmer(context_window_for("smollm2"), 512))
    events = list(session.send("now"))
    notices = [e for e in events if isinstance(e, Notice)]
    assert len(notices) == 1 and "oldest messages left out" in notices[0].text
    sent = provider.calls[0].messages
    assert sent[-1] == Message("user", "now") and sent[0].role == "user"
    assert estimate_messages(sent) <= prompt_budget(8192, 512)
    dropped = int(notices[0].text.split()[0])
    assert dropped == 41 - len(sent) and dropped % 2 == 0
    assert any(isinstance(e, TextDelta) for e in events) and isinstance(events[-1], Finish)


def test_conversation_tokens_calibrated_by_usage() -> None:
    turns = [Turn("user", "x" * 400), Turn("assistant", "y" * 400, input_tokens=150, output_tokens=90),
             Turn("user", "z" * 40)]
    assert conversation_tokens(turns) == 150 + 90 + 10 + MESSAGE_OVERHEAD
    assert conversation_tokens(turns[:1], "s" * 40) == 100 + 10 + 2 * MESSAGE_OVERHEAD
    assert conversation_tokens([]) == 0


# -- a request that cannot fit: warned before it is sent (issue 16, item 16) -------------------


def test_overflow_warns_for_a_question_bigger_than_the_window() -> None:
    trim = make_trimmer(128_000, None)
    huge = [Message("user", "x" * 5_000_000)]  # a 5 MB stdin: ~1.25M tokens by the estimate
    kept, dropped = trim(huge, None)
    assert (kept, dropped) == (huge, 0)  # never dropped, never refused
    warning = trim.overflow(kept, None)  # type: ignore[attr-defined]
    assert warning is not None and warning.startswith("warning:")
    assert "1,250,004 tokens" in warning and "128,000-token context window" in warning
    assert "sending it anyway" in warning


def test_overflow_is_quiet_when_it_fits_or_the_window_is_unknown() -> None:
    small = [Message("user", "hello " * 100)]
    assert make_trimmer(128_000, None).overflow(small, "be brief") is None  # type: ignore[attr-defined]
    assert make_trimmer(None, None).overflow([Message("user", "x" * 5_000_000)], None) is None  # type: ignore[attr-defined]


def test_overflow_names_the_reply_room_when_only_that_is_missing() -> None:
    # 7,800 tokens fit an 8,192 window but not with 1,000 kept for the reply
    warning = make_trimmer(8_192, 1_000).overflow([Message("user", "y" * 31_184)], None)  # type: ignore[attr-defined]
    assert warning is not None and "with room for the reply" in warning
