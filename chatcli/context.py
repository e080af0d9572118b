"""Context-window budgeting: known window sizes, a token estimate, and the session's `Trimmer`.

Decisions (docs/architecture.md, "History and persistence": nothing is dropped silently):

* **Unknown model → no trimming.** A guessed small window (say 8k) would throw away history the
  model could have used behind every OpenRouter/vLLM name we do not know; the server's own
  "context too long" error (ProviderError kind `context_length`) is the safety net, and the
  config's `context_window` / `context_windows` settings let a user declare the size.
* **Estimate, conservatively.** No tokenizer is shipped (tiktoken would be a heavy dependency and
  is wrong for Claude and local models anyway). ASCII text costs ~4 characters a token for
  English prose and code; other scripts cost more per character (CJK is ~1 token a character),
  so each non-ASCII character counts as one token. Each message adds a small framing overhead.
  Over-estimating only trims a little early; under-estimating makes the request fail.
* **Budget** = window − room for the reply − a 5% safety margin for the estimate. The room for
  the reply is `max_tokens` when set, else a quarter of the window capped at 4096 tokens.
* **What is dropped**: the oldest whole exchanges (a user message and the assistant message(s)
  answering it), never half of one, so the request still starts with a user message and roles
  still alternate. The last user message (the question being asked, with a trailing assistant
  prefill when continuing) is always kept, even if it alone does not fit: then the server
  answers with a clear context-length error instead of chatcli sending something else.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

from chatcli.events import DocumentPart, ImagePart, Message
from chatcli.session import CONTINUE_PROMPT, Trimmer
from chatcli.turn import Turn

#: Tokens of framing per message (role markers, separators) on top of its text.
MESSAGE_OVERHEAD = 4
#: Tokens kept for the reply when max_tokens is not set: a quarter of the window, at most this.
DEFAULT_REPLY_RESERVE = 4096
#: Fraction of the window left unused to absorb estimate errors.
SAFETY_MARGIN = 0.05

# Prefix of a (lower-cased, vendor-stripped) model name -> context window in tokens.
# Longest prefix wins. Figures from the providers' model pages; where a model has a larger
# opt-in window (Claude 1M beta), the default is listed.
KNOWN_CONTEXT_WINDOWS: dict[str, int] = {
    # OpenAI
    "gpt-5": 400_000,
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
    "chatgpt-4o": 128_000,
    "gpt-4-turbo": 128_000,
    "gpt-4-1106": 128_000,
    "gpt-4-0125": 128_000,
    "gpt-4": 8_192,
    "gpt-4-32k": 32_768,
    "gpt-3.5-turbo": 16_385,
    "o1": 200_000,
    "o1-mini": 128_000,
    "o3": 200_000,
    "o4-mini": 200_000,
    "gpt-oss": 131_072,
    # Anthropic
    "claude-": 200_000,
    # Google (through OpenAI-compatible gateways)
    "gemini-1.5": 1_048_576,
    "gemini-2": 1_048_576,
    "gemma2": 8_192,
    "gemma-2": 8_192,
    "gemma3": 131_072,
    "gemma-3": 131_072,
    # Local / open-weight models (Ollama, llama.cpp, vLLM names)
    "smollm2": 8_192,
    "smollm": 2_048,
    "llama3.1": 131_072,
    "llama-3.1": 131_072,
    "llama3.2": 131_072,
    "llama-3.2": 131_072,
    "llama3.3": 131_072,
    "llama-3.3": 131_072,
    "llama3": 8_192,
    "llama-3": 8_192,
    "llama2": 4_096,
    "mistral-large": 131_072,
    "mistral-small": 32_768,
    "mistral-nemo": 131_072,
    "mistral": 32_768,
    "mixtral": 32_768,
    "qwen2.5": 32_768,
    "qwen3": 40_960,
    "phi3": 4_096,
    "phi-3": 4_096,
    "phi4": 16_384,
    "deepseek-r1": 131_072,
    "deepseek-v3": 131_072,
    "deepseek-chat": 65_536,
    "deepseek-reasoner": 65_536,
}

_PREFIXES = sorted(KNOWN_CONTEXT_WINDOWS, key=len, reverse=True)


def context_window_for(model: str, provider: str | None = None, *,
                       overrides: Mapping[str, int] | None = None,
                       configured: int | None = None) -> int | None:
    """The model's context window in tokens, or None when unknown (then nothing is trimmed).

    `configured` (the provider's `context_window` setting) wins, then `overrides` (the config's
    `context_windows`, keyed by `provider:model` or `model`), then the built-in table, matched on
    the model name lower-cased without any `vendor/` prefix (OpenRouter) — a local file path
    (`model_path`) is matched on its file name.
    """
    if configured:
        return configured
    if overrides:
        for key in ((f"{provider}:{model}" if provider else None), model):
            if key and key in overrides:
                return overrides[key]
    name = model.strip().lower().replace("\\", "/").rsplit("/", 1)[-1]
    for prefix in _PREFIXES:
        if name.startswith(prefix):
            return KNOWN_CONTEXT_WINDOWS[prefix]
    return None


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def estimate_tokens(text: str) -> int:
    """A conservative token count for `text` (see the module docstring)."""
    if not text:
        return 0
    non_ascii = len(_NON_ASCII.findall(text)) if not text.isascii() else 0
    return math.ceil((len(text) - non_ascii) / 4) + non_ascii


def estimate_messages(messages: Sequence[Message], system: str | None = None) -> int:
    """Estimated prompt tokens of a request: every message plus the system prompt."""
    total = sum(_message_tokens(m) for m in messages)
    if system:
        total += estimate_tokens(system) + MESSAGE_OVERHEAD
    return total


def _message_tokens(m: Message) -> int:
    """A message's text plus its images and PDFs (chatcli/attachments.py documents the estimate)."""
    tokens = estimate_tokens(m.content) + MESSAGE_OVERHEAD
    if any(isinstance(p, (ImagePart, DocumentPart)) for p in m.parts):
        from chatcli.attachments import estimate_tokens as part_tokens

        tokens += sum(part_tokens(p) for p in m.parts if isinstance(p, (ImagePart, DocumentPart)))
    return tokens


def conversation_tokens(turns: Sequence[Turn], system: str | None = None) -> int:
    """How many tokens the conversation occupies now (for the toolbar's share of the window).

    Calibrated by usage when it is known: the last reply's reported input + output tokens are
    exact up to that reply; only turns after it are estimated.
    """
    anchor = -1
    base = 0
    for i in range(len(turns) - 1, -1, -1):
        turn = turns[i]
        if turn.role == "assistant" and turn.input_tokens is not None:
            anchor, base = i, turn.input_tokens + (turn.output_tokens or 0)
            break
    rest = turns[anchor + 1:]
    estimate = sum(estimate_tokens(t.content) + MESSAGE_OVERHEAD for t in rest)
    if anchor < 0 and system:
        estimate += estimate_tokens(system) + MESSAGE_OVERHEAD
    return base + estimate


def prompt_budget(context_window: int, max_tokens: int | None) -> int:
    """Tokens the request's messages and system prompt may use."""
    reserve = max_tokens if max_tokens is not None else min(DEFAULT_REPLY_RESERVE, context_window // 4)
    return int(context_window * (1 - SAFETY_MARGIN)) - reserve


def make_trimmer(context_window: int | None, max_tokens: int | None) -> Trimmer:
    """The session's Trimmer for this window (None: a trimmer that keeps everything)."""
    return WindowTrimmer(context_window, max_tokens)


class WindowTrimmer:
    """`trim_messages` for one window, plus `overflow()`: the warning for a request that still
    does not fit once trimmed (the question alone is too big -- a 5 MB stdin). Nothing is
    refused: the estimate is conservative and the server has the last word (its context-length
    error), but the user is told before the request goes, not after minutes of upload."""

    def __init__(self, context_window: int | None, max_tokens: int | None) -> None:
        self.context_window = context_window
        self.max_tokens = max_tokens

    def __call__(self, messages: Sequence[Message], system: str | None) -> tuple[list[Message], int]:
        if self.context_window is None or not messages:
            return list(messages), 0
        return trim_messages(messages, system, prompt_budget(self.context_window, self.max_tokens))

    def overflow(self, messages: Sequence[Message], system: str | None) -> str | None:
        """A one-line warning when the (trimmed) request cannot fit the known window, else None."""
        window = self.context_window
        if window is None or not messages:
            return None
        budget = prompt_budget(window, self.max_tokens)
        estimate = estimate_messages(messages, system)
        if estimate <= budget:
            return None
        room = "" if estimate > window else " with room for the reply"
        return (f"warning: this request is about {estimate:,} tokens by chatcli's estimate, more than the "
                f"model's {window:,}-token context window holds{room}; sending it anyway, the server "
                "may refuse or cut it")


def trim_messages(messages: Sequence[Message], system: str | None, budget: int) -> tuple[list[Message], int]:
    """Drop the oldest whole exchanges until the estimate fits `budget`. Returns (kept, dropped)."""
    units = _exchanges(messages)
    protected = _protected_units(units)
    sizes = [sum(_message_tokens(m) for m in unit) for unit in units]
    total = sum(sizes) + (estimate_tokens(system) + MESSAGE_OVERHEAD if system else 0)
    first = 0
    while total > budget and first < len(units) - protected:
        total -= sizes[first]
        first += 1
    kept = [m for unit in units[first:] for m in unit]
    return kept, len(messages) - len(kept)


def _exchanges(messages: Sequence[Message]) -> list[list[Message]]:
    """Group messages into units that start at a user message (a leading assistant is its own unit)."""
    units: list[list[Message]] = []
    for message in messages:
        if message.role == "user" or not units:
            units.append([message])
        else:
            units[-1].append(message)
    return units


def _protected_units(units: Sequence[Sequence[Message]]) -> int:
    """How many trailing units are never dropped: the last one (the question being asked), and
    also the one before it when the last is chatcli's continue prompt (it makes no sense alone)."""
    if not units:
        return 0
    last = units[-1]
    if len(units) >= 2 and len(last) == 1 and last[0].role == "user" and last[0].content == CONTINUE_PROMPT:
        return 2
    return 1
