"""Messages made of parts on the wire: the recorded request bodies carry exactly each API's shape
for tool calls, tool results, images (bytes and URLs) and PDFs, through both real SDKs over real
HTTP. The PNG and the PDF are built here, byte by byte (nothing downloaded)."""

from __future__ import annotations

import base64
import struct
import zlib
from collections.abc import Iterator
from typing import Any

import pytest

from chatcli.events import DocumentPart, ImagePart, Message, ToolCallPart, ToolResultPart
from chatcli.providers.anthropic import AnthropicProvider
from chatcli.providers.openai import OpenAIProvider
from chatcli.redact import Secret
from chatcli.settings import ProviderConfig
from tests.support.sse_server import Reply, SSEServer, anthropic_events, openai_chunks

pytestmark = pytest.mark.timeout(20)


def tiny_png() -> bytes:
    """A real 1x1 RGB PNG: signature, IHDR, IDAT (zlib), IEND, each with its CRC."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00\xff\x00\x00")  # filter 0, one red pixel
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def tiny_pdf() -> bytes:
    """A real one-page PDF with a correct cross-reference table."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 72 72] >>"]
    out = b"%PDF-1.4\n"
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n".encode() + body + b"\nendobj\n"
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += b"".join(f"{o:010d} 00000 n \n".encode() for o in offsets)
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return out


PNG, PDF = tiny_png(), tiny_pdf()
PNG_B64, PDF_B64 = base64.b64encode(PNG).decode(), base64.b64encode(PDF).decode()
URL = "https://example.com/shot.png"

CALL = ToolCallPart("call_a", "get_weather", '{"city": "Paris"}')
CALL_2 = ToolCallPart("call_b", "time__get_current_time", "{}")
TOOL_EXCHANGE = [
    Message("user", "weather in Paris, and the time?"),
    Message("assistant", "", (CALL, CALL_2)),
    Message("tool", "", (ToolResultPart("call_a", "sunny, 21 C"),
                         ToolResultPart("call_b", "unknown tool", is_error=True, status="error"))),
]
ATTACHED = [Message("user", "what is in these?", (ImagePart("image/png", PNG, name="shot.png"),
                                                  ImagePart("", url=URL),
                                                  DocumentPart("application/pdf", PDF, name="doc.pdf")))]


def test_the_built_files_are_what_they_claim() -> None:
    assert PNG.startswith(b"\x89PNG\r\n\x1a\n") and PNG.endswith(b"IEND\xaeB`\x82")
    assert PDF.startswith(b"%PDF-1.4") and PDF.rstrip().endswith(b"%%EOF")
    assert PDF[int(PDF.rsplit(b"startxref\n", 1)[1].split()[0]):].startswith(b"xref")


@pytest.fixture(scope="module")
def server() -> Iterator[SSEServer]:
    with SSEServer() as s:
        yield s


def config(kind: str, url: str) -> ProviderConfig:
    return ProviderConfig(name=kind, type=kind, base_url=url, api_key=Secret("sk-test-parts"),
                          timeout=2.0, connect_timeout=1.0)


@pytest.fixture(scope="module")
def openai_provider(server: SSEServer) -> Iterator[OpenAIProvider]:
    p = OpenAIProvider(config("openai", server.openai_url))
    yield p
    p.close()


@pytest.fixture(scope="module")
def anthropic_provider(server: SSEServer) -> Iterator[AnthropicProvider]:
    p = AnthropicProvider(config("anthropic", server.anthropic_url))
    yield p
    p.close()


def sent_openai(provider: OpenAIProvider, server: SSEServer, messages: list[Message]) -> list[Any]:
    server.reset().add(Reply.sse(openai_chunks(["ok"])))
    list(provider.stream(messages, model="m", system="be brief"))
    body = server.requests[0].json
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    return list(body["messages"][1:])


def sent_anthropic(provider: AnthropicProvider, server: SSEServer, messages: list[Message]) -> list[Any]:
    server.reset().add(Reply.sse(anthropic_events(["ok"])))
    list(provider.stream(messages, model="m"))
    return list(server.requests[0].json["messages"])


# -- OpenAI Chat Completions --------------------------------------------------------------------


def test_openai_tool_calls_and_results(openai_provider: OpenAIProvider, server: SSEServer) -> None:
    assert sent_openai(openai_provider, server, TOOL_EXCHANGE) == [
        {"role": "user", "content": "weather in Paris, and the time?"},
        # content "" rather than null: llama-cpp-python's server rejects null with a 500
        {"role": "assistant", "content": "", "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
            {"id": "call_b", "type": "function", "function": {"name": "time__get_current_time", "arguments": "{}"}},
        ]},
        {"role": "tool", "tool_call_id": "call_a", "content": "sunny, 21 C"},
        {"role": "tool", "tool_call_id": "call_b", "content": "unknown tool"},
    ]


def test_openai_assistant_text_with_a_call(openai_provider: OpenAIProvider, server: SSEServer) -> None:
    messages = [Message("user", "q"), Message("assistant", "Let me check.", (CALL,)),
                Message("tool", "", (ToolResultPart("call_a", "sunny"),))]
    assert sent_openai(openai_provider, server, messages)[1]["content"] == "Let me check."


def test_openai_images_and_pdf(openai_provider: OpenAIProvider, server: SSEServer) -> None:
    assert sent_openai(openai_provider, server, ATTACHED) == [{"role": "user", "content": [
        {"type": "text", "text": "what is in these?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG_B64}"}},
        {"type": "image_url", "image_url": {"url": URL}},
        {"type": "file", "file": {"filename": "doc.pdf", "file_data": f"data:application/pdf;base64,{PDF_B64}"}},
    ]}]


def test_openai_plain_messages_keep_their_string_shape(openai_provider: OpenAIProvider, server: SSEServer) -> None:
    messages = [Message("user", "hi"), Message("assistant", "hello"), Message("user", "bye")]
    assert sent_openai(openai_provider, server, messages) == [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "bye"}]


# -- Anthropic Messages -------------------------------------------------------------------------


def test_anthropic_tool_use_and_results(anthropic_provider: AnthropicProvider, server: SSEServer) -> None:
    assert sent_anthropic(anthropic_provider, server, TOOL_EXCHANGE) == [
        {"role": "user", "content": "weather in Paris, and the time?"},
        {"role": "assistant", "content": [  # no empty text block: the API rejects one
            {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_b", "name": "time__get_current_time", "input": {}},
        ]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_a", "content": "sunny, 21 C", "is_error": False},
            {"type": "tool_result", "tool_use_id": "call_b", "content": "unknown tool", "is_error": True},
        ]},
    ]


def test_anthropic_results_merge_with_the_next_user_message(anthropic_provider: AnthropicProvider,
                                                            server: SSEServer) -> None:
    # An interrupted turn: the results, then the user's next question, must be ONE user message
    # (roles alternate), results first.
    messages = [Message("user", "q"), Message("assistant", "Checking.", (CALL,)),
                Message("tool", "", (ToolResultPart("call_a", "interrupted", is_error=True, status="interrupted"),)),
                Message("user", "never mind")]
    assert sent_anthropic(anthropic_provider, server, messages) == [
        {"role": "user", "content": "q"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Checking."},
            {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {"city": "Paris"}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "call_a", "content": "interrupted", "is_error": True},
            {"type": "text", "text": "never mind"}]},
    ]


def test_anthropic_invalid_arguments_go_back_as_an_empty_input(anthropic_provider: AnthropicProvider,
                                                              server: SSEServer) -> None:
    bad = ToolCallPart("toolu_x", "get_weather", '{"city": "Par')
    messages = [Message("user", "q"), Message("assistant", "", (bad,)),
                Message("tool", "", (ToolResultPart("toolu_x", "invalid JSON arguments", is_error=True),))]
    assert sent_anthropic(anthropic_provider, server, messages)[1]["content"] == [
        {"type": "tool_use", "id": "toolu_x", "name": "get_weather", "input": {}}]


def test_anthropic_images_and_pdf(anthropic_provider: AnthropicProvider, server: SSEServer) -> None:
    assert sent_anthropic(anthropic_provider, server, ATTACHED) == [{"role": "user", "content": [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}},
        {"type": "image", "source": {"type": "url", "url": URL}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF_B64}},
        {"type": "text", "text": "what is in these?"},
    ]}]


def test_anthropic_plain_messages_keep_their_string_shape(anthropic_provider: AnthropicProvider,
                                                          server: SSEServer) -> None:
    messages = [Message("user", "hi"), Message("assistant", "hello"), Message("user", "bye")]
    assert sent_anthropic(anthropic_provider, server, messages) == [
        {"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
        {"role": "user", "content": "bye"}]


def test_anthropic_results_always_lead_a_merged_user_message(anthropic_provider: AnthropicProvider,
                                                             server: SSEServer) -> None:
    # The API wants `tool_result` blocks before any other content of the user message, even when
    # the user's text came first in the history.
    messages = [Message("user", "q"), Message("assistant", "", (CALL,)), Message("user", "and hurry"),
                Message("tool", "", (ToolResultPart("call_a", "sunny"),))]
    assert sent_anthropic(anthropic_provider, server, messages)[2] == {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "call_a", "content": "sunny", "is_error": False},
        {"type": "text", "text": "and hurry"}]}
