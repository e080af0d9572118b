"""O1-O16 (the O table of tests/e2e/README.md): the installed `chatcli ask` against OpenAI-dialect stream faults.

Each case scripts the loopback server, runs `chatcli ask -m openai:gpt-test hi` (piped, so plain
output) and asserts: no traceback, the exit code (docs/architecture.md, "Exit codes"), the exact
stdout, the stderr line(s), the stored turns (role, text, finish_reason) and that no canary key appears anywhere.
O17 (one huge delta) is in test_load.py, next to the other memory measurements.
"""

from __future__ import annotations

import pytest

from tests.e2e.helpers import Case, Expect, Played, batch_fixture, check, ids
from tests.support.sse_server import (
    Reply,
    Write,
    openai_chunk,
    openai_chunks,
    openai_error,
    split_bytes,
    sse,
)

URL = r"http://127\.0\.0\.1:\d+/v1"
FOOT = r"\[{reason}(?: \([^)]*\))?(?: · [^\]]*)?\]"  # the footer line: [reason (raw) · usage · timings]
USER = ("user", "hi", None)
RETRY1 = "[providers.openai]\nmax_retries = 1\n"


def footer(reason: str) -> str:
    return FOOT.format(reason=reason)


def _multibyte_stream(crlf: bool) -> list[Write]:
    """O13: 'é', '€', an emoji and Cyrillic split inside their UTF-8 bytes across TCP writes;
    comments, keep-alives, `id:` and `retry:` fields; LF or CRLF line endings."""
    nl = b"\r\n" if crlf else b"\n"
    body = b"".join([
        b": keep-alive" + nl + nl,
        b"retry: 1000" + nl + b"id: 1" + nl,
        openai_chunk({"role": "assistant", "content": ""}, crlf=crlf),
        openai_chunk({"content": "caf\u00e9 \u20ac "}, crlf=crlf),
        b": ping" + nl + nl,
        openai_chunk({"content": "\U0001f600 \u043f\u0440\u0438\u0432\u0435\u0442"}, crlf=crlf),
        openai_chunk({}, finish="stop", crlf=crlf),
        sse("[DONE]", crlf=crlf),
    ])
    cuts = [body.find(ch.encode()) + 1 for ch in ("\u00e9", "\u20ac", "\U0001f600", "\u0438")]
    return split_bytes(body, *cuts)


def _interleaved_n2() -> list[bytes]:
    """O15: n=2, choices for index 0 and 1 interleaved."""
    out = [openai_chunk({"role": "assistant", "content": ""})]
    for a, b in (("One ", "Uno "), ("two", "dos")):
        out.append(openai_chunk({"content": a}, index=0))
        out.append(openai_chunk({"content": b}, index=1))
    out += [openai_chunk({}, finish="stop", index=0), openai_chunk({}, finish="stop", index=1), sse("[DONE]")]
    return out


CASES = [
    Case("O1-normal-usage-chunk", (Reply.sse(openai_chunks(["Hel", "lo"], usage=(5, 2))),),
         Expect(0, "Hello\n", (r"\[stop · 5 in / 2 out · first token T\]",), 1,
                (USER, ("assistant", "Hello", "stop")), 1)),
    Case("O2-azure-empty-choices-first",
         (Reply.sse([openai_chunk(choices=[], prompt_filter_results=[{"prompt_index": 0}]),
                     *openai_chunks(["Hel", "lo"])]),),
         Expect(0, "Hello\n", (footer("stop"),), 1, (USER, ("assistant", "Hello", "stop")))),
    Case("O3-no-done-no-finish", (Reply.sse(openai_chunks(["Hel", "lo"], finish=None, done=False)),),
         Expect(3, "Hello\n",
                (footer("incomplete"),
                 r"warning: the stream ended without a finish signal — the reply may be truncated"), 2,
                (USER, ("assistant", "Hello", "incomplete")))),
    Case("O3b-done-without-finish", (Reply.sse(openai_chunks(["Hel", "lo"], finish=None)),),
         Expect(3, "Hello\n", (footer("incomplete"), r"warning: .*truncated.*"), 2,
                (USER, ("assistant", "Hello", "incomplete")))),
    Case("O4-length", (Reply.sse(openai_chunks(["Hel", "lo"], finish="length")),),
         Expect(3, "Hello\n", (footer("length"), r"warning: .*token limit.*/continue.*"), 2,
                (USER, ("assistant", "Hello", "length")))),
    Case("O5-content-filter", (Reply.sse(openai_chunks(["Hel"], finish="content_filter")),),
         Expect(3, "Hel\n", (footer("content_filter"), r"warning: .*filter.*"), 2,
                (USER, ("assistant", "Hel", "content_filter")))),
    Case("O5b-refusal-delta", (Reply.sse(openai_chunks([], refusal=["I can't ", "help with that."])),),
         # the refusal is not reply text: stdout stays empty, the explanation is on stderr
         Expect(1, "", (r".*refus.*I can't help with that\..*",), None, None)),
    Case("O6-tool-calls-unoffered", (Reply.sse(openai_chunks(["Let me check."], finish="tool_calls",
                                                              tool_call=True)),),
         Expect(3, "Let me check.\n", (footer("tool_calls"), r"warning: .*tool.*"), 2,
                (USER, ("assistant", "Let me check.", "tool_calls")))),
    Case("O7-unknown-finish-and-reasoning",
         (Reply.sse(openai_chunks(["Hel", "lo"], finish="eos", reasoning=["thinking..."])),),
         # finished with a value chatcli does not know: a finish signal all the same (kept raw)
         Expect(0, "Hello\n", (r"\[stop \(eos\)(?: · [^\]]*)?\]",), None,
                (USER, ("assistant", "Hello", "stop")))),
    Case("O8-vllm-error-after-content",
         (Reply.sse([*openai_chunks(["Hel"], finish=None, done=False),
                     openai_error("upstream timed out", code=504), sse("[DONE]")]),),
         Expect(3, "Hel\n", (footer("error"),
                             r"warning: the stream failed: .*upstream timed out.* — partial reply kept"), 2,
                (USER, ("assistant", "Hel", "error")))),
    Case("O8b-ollama-error-string-after-content",
         (Reply.sse([*openai_chunks(["Hel"], finish=None, done=False),
                     sse({"error": "model runner crashed"})]),),
         Expect(3, "Hel\n", (footer("error"), r"warning: the stream failed: .*model runner crashed.*"), 2,
                (USER, ("assistant", "Hel", "error")))),
    Case("O9-error-before-any-token-retried",
         (Reply.sse([openai_error("model not loaded", code=503), sse("[DONE]")]),
          Reply.sse(openai_chunks(["Hel", "lo"]))),
         # nothing was shown yet: retried automatically, visibly, then the reply
         Expect(0, "Hello\n", (r".*model not loaded — retrying in T \(attempt 2 of [0-9]+\)", footer("stop")), 2,
                (USER, ("assistant", "Hello", "stop")), 2)),
    Case("O9b-error-before-any-token-gives-up",
         (Reply.sse([openai_error("model not loaded", code=503), sse("[DONE]")]),
          Reply.sse([openai_error("model not loaded", code=503), sse("[DONE]")])),
         Expect(1, "", (rf"chatcli: openai \({URL}\): .*\(HTTP 503\): model not loaded",), 2, None, 2),
         config=RETRY1),
    Case("O10-done-only", (Reply.sse([sse("[DONE]")]),),
         Expect(1, "", (rf"chatcli: openai \({URL}\): .*empty.*",), 1, None)),
    Case("O10b-zero-chunks", (Reply.sse([]),),
         Expect(1, "", (rf"chatcli: openai \({URL}\): .*empty.*",), 1, None)),
    Case("O11-malformed-json-mid-stream",
         (Reply.sse([*openai_chunks(["Hel"], finish=None, done=False), b"data: {not json\n\n",
                     *openai_chunks(["lo"])]),),
         Expect(3, "Hel\n", (footer("error"), r"warning: the stream failed: .*malformed.* — partial reply kept"), 2,
                (USER, ("assistant", "Hel", "error")))),
    Case("O12-invalid-utf8-mid-stream",
         (Reply.sse([*openai_chunks(["Hel"], finish=None, done=False),
                     b'data: {"id":"x","object":"chat.completion.chunk","created":1,"model":"m",'
                     b'"choices":[{"index":0,"delta":{"content":"\xff\xfe"},"finish_reason":null}]}\n\n',
                     *openai_chunks(["lo"])]),),
         Expect(3, "Hel\n", (footer("error"), r"warning: the stream failed: .* — partial reply kept"), 2,
                (USER, ("assistant", "Hel", "error")))),
    Case("O13-multibyte-split-comments-id-retry", (Reply.sse(_multibyte_stream(crlf=False)),),
         Expect(0, "caf\u00e9 \u20ac \U0001f600 \u043f\u0440\u0438\u0432\u0435\u0442\n", (footer("stop"),), 1,
                (USER, ("assistant", "caf\u00e9 \u20ac \U0001f600 \u043f\u0440\u0438\u0432\u0435\u0442", "stop")))),
    Case("O13b-crlf-multibyte-split", (Reply.sse(_multibyte_stream(crlf=True)),),
         Expect(0, "caf\u00e9 \u20ac \U0001f600 \u043f\u0440\u0438\u0432\u0435\u0442\n", (footer("stop"),), 1,
                (USER, ("assistant", "caf\u00e9 \u20ac \U0001f600 \u043f\u0440\u0438\u0432\u0435\u0442", "stop")))),
    Case("O14-html-captive-portal", (Reply.html(),),
         Expect(1, "", (rf"chatcli: openai \({URL}\): not an event stream \(content-type text/html\).*",), 1,
                None, 1)),
    Case("O15-n2-interleaved", (Reply.sse(_interleaved_n2()),),
         Expect(0, "One two\n", (footer("stop"),), 1, (USER, ("assistant", "One two", "stop")))),
    Case("O16-stream-options-rejected",
         (Reply.error(400, "Unrecognized request argument supplied: stream_options", type="invalid_request_error"),
          Reply.sse(openai_chunks(["Hel", "lo"]))),
         Expect(0, "Hello\n", (footer("stop"),), None, (USER, ("assistant", "Hello", "stop")), 2)),
    Case("O16b-422-stream-options",
         (Reply.error(422, "Extra inputs are not permitted: stream_options"),
          Reply.sse(openai_chunks(["Hel", "lo"]))),
         Expect(0, "Hello\n", (footer("stop"),), None, (USER, ("assistant", "Hello", "stop")), 2)),
]

played = batch_fixture(CASES)


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_openai_stream_fault(case: Case, played: dict[str, Played]) -> None:
    run = played[case.id]
    check(run)
    if case.id == "O1-normal-usage-chunk":
        reply = run.turns[-1]
        assert (reply["input_tokens"], reply["output_tokens"]) == (5, 2)
        assert reply["provider"] == "openai" and reply["model"] == "gpt-test"
        body = run.requests[0].json
        assert body["stream"] is True and body["messages"][-1] == {"role": "user", "content": "hi"}
    if case.id.startswith("O5b"):
        # stored as a refusal (finish content_filter, the explanation kept), never as reply text
        assert [(t["role"], t["finish_reason"]) for t in run.turns][-1] == ("assistant", "content_filter")
        assert "help with that" in (run.turns[-1]["finish_detail"] or "")
        assert run.turns[-1]["content"] == ""
    if case.id.startswith("O6"):
        assert "location" not in run.result.stdout and "get_weather" not in run.result.stdout
    if case.id.startswith("O7"):
        # an unknown finish reason is not "stop": kept raw beside the normalized value
        assert run.turns[-1]["finish_raw"] == "eos"
        assert run.turns[-1]["content"] == "Hello" and run.turns[-1]["reasoning"] == "thinking..."
        assert "thinking..." not in run.result.stdout  # reasoning never on stdout
    if case.id.startswith(("O9b", "O10", "O14")):
        # a failed request leaves no empty assistant turn that claims to be a reply
        assert not [t for t in run.turns if t["role"] == "assistant" and t["finish_reason"] == "stop"]
        assert not [t for t in run.turns if t["role"] == "assistant" and t["content"]]
    if case.id.startswith("O16"):
        assert "stream_options" in run.requests[0].json
        assert "stream_options" not in run.requests[1].json
