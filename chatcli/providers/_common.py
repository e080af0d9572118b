"""What the OpenAI and Anthropic providers share: error classification, the HTTP client, keys.

Nothing here imports an SDK: the providers pass plain facts in (status, headers, body, the
server's error type/code) and get a classified `ProviderError` back, so the rules live in one
place and read the same for both wire dialects.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from chatcli.errors import ErrorKind, ProviderError
from chatcli.redact import redact

if TYPE_CHECKING:
    import httpx2

    from chatcli.settings import ProviderConfig

#: Sent when a server needs no key (Ollama, llama.cpp, vLLM without --api-key): both SDKs
#: refuse to build a client without one, and an empty `Authorization: Bearer ` is worse.
PLACEHOLDER_KEY = "not-needed"

#: Longest piece of server text put into an error message.
SERVER_TEXT_LIMIT = 200

_DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}
# Header names that carry a credential of their own (a gateway key instead of the provider key).
_AUTH_HEADERS = frozenset({"authorization", "x-api-key", "api-key"})
# OpenAI `context_length_exceeded` / "maximum context length", Anthropic "prompt is too long",
# llama.cpp `exceed_context_size_error` "the request exceeds the available context size", vLLM.
_CONTEXT_MARKERS = ("context_length_exceeded", "exceed_context_size", "prompt is too long",
                    "maximum context length", "context window", "context length", "context size")


# -- keys and the HTTP client -----------------------------------------------------------------

_insecure_warned: set[str] = set()


def is_loopback_host(host: str) -> bool:
    import ipaddress

    host = host.strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def insecure_base_url(config: ProviderConfig) -> str | None:
    """The warning for a plain-HTTP `base_url` to a host that is not this machine, when a key or
    credential headers would travel on it (docs/architecture.md, "Keys": no credentials over plain
    HTTP except to loopback); None when the URL is fine. A keyless plain-HTTP server on the LAN (Ollama on
    another box) is not warned about: nothing secret is sent but the conversation itself."""
    if not config.base_url:
        return None
    try:
        parts = urlsplit(config.base_url)
        host = parts.hostname or ""
    except ValueError:  # malformed: reported as an invalid base URL when the client is built
        return None
    if parts.scheme.lower() != "http" or is_loopback_host(host):
        return None
    if not config.api_key and not config.headers:
        return None
    return (f"{config.name}: base_url {clean(config.base_url, config, 100)} is not HTTPS and not this "
            f"machine: the API key and the conversation travel unencrypted (use https://)")


def warn_insecure_base_url(config: ProviderConfig) -> None:
    """Print `insecure_base_url` once per URL per process (from a provider's constructor, which
    runs on the main thread before any output)."""
    message = insecure_base_url(config)
    if message is None or config.base_url in _insecure_warned:
        return
    _insecure_warned.add(config.base_url or "")
    from chatcli.fsperm import stderr_warn

    stderr_warn(message)



def key_env(config: ProviderConfig) -> str:
    return config.api_key_env or _DEFAULT_KEY_ENV.get(config.type, "the API key variable")


def api_key(config: ProviderConfig) -> str:
    """The key to build the SDK client with; raises `auth` before any network when there is none.

    A missing key is fatal only for the vendor's own endpoint (no `base_url`) with no credential
    header configured. With a `base_url` the server is often a local one that wants no key, so a
    placeholder is sent; if the server does want one, its 401 becomes an `auth` error that says
    which variable to set (see `classify_status`).
    """
    if config.api_key:
        return config.api_key.reveal()
    has_auth_header = any(name.lower() in _AUTH_HEADERS for name, _ in config.headers)
    if config.base_url or has_auth_header:
        return PLACEHOLDER_KEY
    raise ProviderError("auth", f"no API key: set {key_env(config)}", provider=config.name)


def default_headers(config: ProviderConfig) -> dict[str, str]:
    return {name: value.reveal() for name, value in config.headers}


def http_client(client_cls: type[httpx2.Client], config: ProviderConfig) -> httpx2.Client:
    """The SDK's own default client class (keeps its pool limits and TCP keep-alive options), but

    * `follow_redirects=False`: a 3xx to another host would carry the key (and custom headers,
      which httpx2 forwards across origins) there; it becomes a `bad_response` error instead;
    * `timeout`: httpx2's read timeout applies to each socket read, so `config.timeout` bounds a
      gap (stall) inside the stream, not the whole reply.
    """
    return client_cls(follow_redirects=False, timeout=timeout(config))


def invalid_base_url(config: ProviderConfig, exc: BaseException) -> ProviderError:
    """A base URL httpx2 cannot use: malformed (`http://[::1`, raised when the client is built) or
    without an http(s) scheme (`localhost:11434/v1`). Not retryable, unlike a refused connection.
    `chatcli/config/` should catch these first; this keeps a bad one from looking like a network fault."""
    return ProviderError("bad_request", f"invalid base URL ({clean(str(exc), config, 100)}); it must look like "
                         "http://host:port/v1", provider=config.name, base_url=config.base_url)


def bad_scheme(exc: BaseException | None) -> BaseException | None:
    """The `httpx2.UnsupportedProtocol` in an exception chain (the openai SDK wraps it)."""
    seen = 0
    while exc is not None and seen < 6:
        if type(exc).__name__ == "UnsupportedProtocol":
            return exc
        exc = exc.__cause__ or exc.__context__
        seen += 1
    return None


def timeout(config: ProviderConfig) -> httpx2.Timeout:
    """`config.timeout` for each read (a gap in the stream), `connect_timeout` to connect."""
    import httpx2

    return httpx2.Timeout(config.timeout, connect=config.connect_timeout)


# -- server text ------------------------------------------------------------------------------


def clean(text: str, config: ProviderConfig, limit: int = SERVER_TEXT_LIMIT) -> str:
    """Untrusted server text made fit for a one-line message: no secrets, no newlines, short."""
    text = redact(str(text), config.secrets())
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1].rstrip() + "…"
    return text


@dataclass(frozen=True)
class ErrorFacts:
    """What a server said about an error, from whichever shape its body had."""

    message: str = ""
    type: str | None = None  # OpenAI `error.type` / Anthropic `error.type` (e.g. overloaded_error)
    code: str | None = None  # OpenAI `error.code` (e.g. insufficient_quota); vLLM puts a status here


def error_facts(body: object, fallback: str = "") -> ErrorFacts:
    """Read `{"error": {...}}`, `{"type": "error", "error": {...}}`, the inner `{...}` itself,
    `{"error": "text"}` (Ollama), `{"detail": ...}` (FastAPI servers) or plain text."""
    if isinstance(body, Mapping):
        inner = body.get("error", body)
        if isinstance(inner, str):
            return ErrorFacts(message=inner)
        if isinstance(inner, Mapping):
            message = inner.get("message") or inner.get("detail") or body.get("detail") or fallback
            etype, code = inner.get("type"), inner.get("code")
            return ErrorFacts(
                message=message if isinstance(message, str) else str(message),
                type=etype if isinstance(etype, str) else None,
                code=str(code) if code is not None else None,
            )
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str) and body.strip():
        if "<html" in body[:500].lower() or body.lstrip().startswith("<!"):
            return ErrorFacts(message="an HTML error page")  # a proxy's page, not the API
        return ErrorFacts(message=body)
    return ErrorFacts(message=fallback)


# -- retry-after ------------------------------------------------------------------------------


def retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds to wait from `retry-after-ms` (OpenAI, Anthropic) or `retry-after` (seconds or an
    HTTP date). Any value is returned: capping it is the session's job (it gives up past its cap)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    raw_ms = lowered.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0.0, float(raw_ms) / 1000.0)
        except ValueError:
            pass
    raw = lowered.get("retry-after")
    if not raw:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        pass
    try:
        import email.utils  # only for an HTTP-date retry-after; costs ~10 ms at import

        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# -- classification ---------------------------------------------------------------------------


def _status_from_code(code: str | None) -> int | None:
    """vLLM reports an in-stream error's HTTP status as `error.code` (e.g. 504)."""
    if code and code.isdigit() and 100 <= int(code) <= 599:
        return int(code)
    return None


def _kind(status: int | None, facts: ErrorFacts) -> ErrorKind:
    text = facts.message.lower()
    markers = {facts.type, facts.code}
    if facts.code == "insufficient_quota" or facts.type in ("insufficient_quota", "billing_error") \
            or status == 402:
        return "quota"
    if (status is None or (400 <= status < 500 and status != 429)) and (
            any(m in f"{text} {markers}" for m in _CONTEXT_MARKERS)):
        return "context_length"
    if status in (503, 529) or facts.type == "overloaded_error":
        return "overloaded"
    if status == 429 or facts.type == "rate_limit_error" or facts.code == "rate_limit_exceeded":
        return "rate_limited"
    if status in (401, 403) or facts.type in ("authentication_error", "permission_error"):
        return "auth"
    if status == 404 or facts.type == "not_found_error" or (status is None and "not found" in text):
        return "not_found"
    if status == 408 or facts.type == "timeout_error":
        return "timeout"
    if status is not None and 400 <= status < 500:
        return "bad_request"
    if facts.type == "invalid_request_error":
        return "bad_request"
    return "server"  # 5xx, api_error, or an in-stream error that says nothing more


def _describe(kind: ErrorKind, status: int | None, text: str, config: ProviderConfig, model: str | None,
              placeholder_key: bool) -> str:
    http = f" (HTTP {status})" if status else ""
    said = f": {text}" if text else ""
    header = missing_header(text) if kind in ("auth", "bad_request") else None
    if header is not None:
        # The server says which header it did not get: the key may well be right (a gateway
        # that reads another header than the SDK sends), so the key is not blamed.
        return (f"the server asked for a {header!r} header that was not sent{http}{said}; set it in this "
                f"provider's headers (headers = {{ \"{header}\" = \"${{VAR}}\" }})")
    if kind == "auth":
        if placeholder_key:
            return f"the server wants an API key{http}{said}; set {key_env(config)}"
        return f"authentication failed{http}{said}; check the API key in ${key_env(config)}"
    if kind == "not_found":
        what = f"model {model!r}" if model else "the endpoint"
        return (f"not found{http}{said}; check {what} (`chatcli models` lists the configured models) "
                f"and the base URL")
    if kind == "quota":
        return f"quota exhausted{http}{said}; check the plan and billing of this account"
    if kind == "bad_request":
        refused = _refused_kind(text)
        if refused is not None:
            who = f"the model {model!r}" if model else "the model"
            return f"{who} does not accept {refused}{http}{said}; attach text, or choose a model that takes {refused}"
    return f"{_PLAIN_CAUSES.get(kind, 'server error')}{http}{said}"


# "missing x-api-key header", "Missing required header: api-key", "x-api-key header is required",
# "header 'Ocp-Apim-Subscription-Key' is missing", "No api-key header": a header name is one token.
_HEADER = r"[`'\"]?([A-Za-z][A-Za-z0-9_-]{1,63})[`'\"]?"
_MISSING_HEADER = (
    re.compile(rf"\b(?:missing|no|without)(?: required| the| an?)? {_HEADER} header\b", re.IGNORECASE),
    re.compile(rf"\bmissing (?:required |the )?(?:http )?header:? {_HEADER}", re.IGNORECASE),
    re.compile(rf"\bheader:? {_HEADER} (?:is |was )?(?:missing|required|not (?:set|provided|present|found))",
               re.IGNORECASE),
    re.compile(rf"\b{_HEADER} header (?:is |was )?(?:missing|required|not (?:set|provided|present|found))",
               re.IGNORECASE),
)
_NOT_HEADER_NAMES = frozenset({"the", "a", "an", "is", "was", "auth", "authentication", "credential", "credentials",
                               "required", "http", "request", "authorization", "bearer"})


def missing_header(text: str) -> str | None:
    """The header a server's error text says it did not get (e.g. `x-api-key`), or None.
    `Authorization` is left out: a missing one means no key at all, which the key advice covers."""
    for pattern in _MISSING_HEADER:
        match = pattern.search(text)
        if match and match.group(1).lower() not in _NOT_HEADER_NAMES:
            return match.group(1)
    return None


_KIND_WORDS = (("images", r"image|vision|image_url"), ("PDFs", r"pdf|document|file"))


def _refused_kind(text: str) -> str | None:
    """ "images" / "PDFs" when a 400's text says the model does not take that kind of input, e.g.
    OpenAI's "Invalid content type. image_url is only supported by certain models", vLLM's
    "... is not a multimodal model", Anthropic's "... does not support image input"."""
    low = text.lower()
    denial = r"(?:not supported|unsupported|not support|doesn't support|only supported|not a multimodal|not accept)"
    for what, words in _KIND_WORDS:
        if re.search(rf"(?:{words})[^.;]*{denial}|{denial}[^.;]*(?:{words})", low):
            return what
    if "not a multimodal" in low:
        return "images"
    return None


# Error kinds whose message is just what happened (no hint to add).
_PLAIN_CAUSES: dict[str, str] = {
    "context_length": "the conversation is too long for the model's context window",
    "rate_limited": "rate limited",
    "overloaded": "the server is overloaded",
    "timeout": "the server timed out",
    "bad_request": "the request was rejected",
}


def classify_status(config: ProviderConfig, *, status: int | None, body: object,
                    headers: Mapping[str, str] | None = None, model: str | None = None,
                    etype: str | None = None, code: str | None = None, fallback: str = "",
                    placeholder_key: bool = False) -> ProviderError:
    """An HTTP error response, or an error event inside a 200 stream (`status=None`).

    `etype`/`code` override what the body says (the SDKs already parsed them). Classification
    goes by the server's error type and code first, then the status, never the SDK's class:
    Anthropic's mid-stream `overloaded_error` arrives as an `APIStatusError` with status 200.
    """
    facts = error_facts(body, fallback)
    facts = ErrorFacts(facts.message, etype or facts.type, code or facts.code)
    if status is None or status == 200:
        status = _status_from_code(facts.code)
    if status is not None and 300 <= status < 400:
        return redirect_error(config, (headers or {}).get("location"), status)
    kind = _kind(status, facts)
    message = _describe(kind, status, clean(facts.message, config), config, model, placeholder_key)
    wait = retry_after(headers) if kind in ("rate_limited", "overloaded", "server") else None
    lowered = {k.lower(): v for k, v in (headers or {}).items()}
    # `x-should-retry: false` (OpenAI/Anthropic): the server says a retry cannot help.
    cls = NoRetryError if lowered.get("x-should-retry", "").strip().lower() == "false" else ProviderError
    return cls(kind, message, provider=config.name, base_url=config.base_url, status=status, retry_after=wait)


class NoRetryError(ProviderError):
    """A `ProviderError` the server marked `x-should-retry: false`: never retried, whatever its kind."""

    @property
    def retryable(self) -> bool:
        return False


def event_error_detail(config: ProviderConfig, *, body: object, etype: str | None = None,
                       code: str | None = None, fallback: str = "") -> str:
    """The `Finish("error")` detail for an error event after some text (e.g. Anthropic's
    mid-stream `overloaded_error`), worded like the error it would have been before any text."""
    facts = error_facts(body, fallback)
    facts = ErrorFacts(facts.message, etype or facts.type, code or facts.code)
    status = _status_from_code(facts.code)
    kind = _kind(status, facts)
    return "mid-stream: " + _describe(kind, status, clean(facts.message, config), config, None, False)


def redirect_error(config: ProviderConfig, location: str | None, status: int) -> ProviderError:
    host = urlsplit(location).netloc if location else ""
    target = f" to {clean(host, config, 80)}" if host else ""
    return ProviderError(
        "bad_response",
        f"the server redirected (HTTP {status}){target}; not followed so the API key stays put — "
        "set base_url to the final address",
        provider=config.name, base_url=config.base_url, status=status)


def connection_error(config: ProviderConfig, cause: BaseException | None = None, *,
                     streaming: bool = False) -> ProviderError:
    reason = _transport_reason(cause)
    if streaming:
        message = f"the connection was lost before any reply text{reason}"
    else:
        message = f"cannot connect to {config.base_url or 'the API'}{reason}"
    return ProviderError("connection", message, provider=config.name, base_url=config.base_url)


def timeout_error(config: ProviderConfig, *, streaming: bool) -> ProviderError:
    what = (f"no data for {config.timeout:g}s" if streaming
            else f"no answer within {config.timeout:g}s")
    return ProviderError("timeout", f"the server timed out ({what})",
                         provider=config.name, base_url=config.base_url)


def bad_response(config: ProviderConfig, detail: str) -> ProviderError:
    return ProviderError("bad_response", detail, provider=config.name, base_url=config.base_url)


def not_a_stream(config: ProviderConfig, content_type: str | None, *, empty: bool) -> ProviderError:
    """A 200 that carried no events: an HTML portal, a JSON body, `[DONE]` alone, nothing."""
    ctype = (content_type or "none").split(";")[0].strip() or "none"
    if "event-stream" in ctype:
        detail = "empty response: the event stream ended before any reply (no data events)"
    elif empty:
        detail = f"empty response with content-type {clean(ctype, config, 60)}, expected an event stream"
    else:
        detail = (f"not an event stream (content-type {clean(ctype, config, 60)}); is the base URL right, "
                  "or is a proxy or login page answering?")
    return bad_response(config, detail)


def is_html(content_type: str | None) -> bool:
    ctype = (content_type or "").split(";")[0].strip().lower()
    return ctype in ("text/html", "application/xhtml+xml")


def _transport_reason(cause: BaseException | None) -> str:
    """A short, key-free reason from a transport exception chain (e.g. "connection refused")."""
    seen = 0
    while cause is not None and seen < 6:
        text = str(cause).strip()
        if text and text not in ("Connection error.", "Request timed out."):
            low = text.lower()
            for needle, reason in (("refused", "connection refused"),
                                   ("name or service not known", "unknown host"),
                                   ("nodename nor servname", "unknown host"),
                                   ("temporary failure in name resolution", "unknown host"),
                                   ("certificate", "TLS certificate problem"),
                                   ("ssl", "TLS error"),
                                   ("reset", "connection reset"),
                                   ("unreachable", "network unreachable")):
                if needle in low:
                    return f" ({reason})"
        cause = cause.__cause__ or cause.__context__
        seen += 1
    return ""


# -- mid-stream failures ----------------------------------------------------------------------


def malformed_detail(exc: BaseException) -> str:
    """For the raw `UnicodeDecodeError`/`JSONDecodeError` both SDKs' SSE decoders let through."""
    if isinstance(exc, UnicodeDecodeError):
        return "malformed stream from the server (invalid UTF-8)"
    if isinstance(exc, ValueError):
        return "malformed stream from the server (invalid JSON)"
    return f"malformed stream from the server ({type(exc).__name__})"


def stream_failure_detail(exc: BaseException, config: ProviderConfig) -> str:
    """The `Finish("error")` detail for a failure after some text was shown."""
    name = type(exc).__name__
    if isinstance(exc, ValueError):
        return malformed_detail(exc)
    if "Timeout" in name:
        return f"connection lost: no data from the server for {config.timeout:g}s"
    return f"connection lost ({_transport_reason(exc).strip(' ()') or name})"


def unknown_finish_detail(raw: str) -> str:
    """The `Finish("incomplete")` detail for a finish reason chatcli does not know: it is no
    promise that the reply is complete (issue 16), so it is shown raw and the reply is partial."""
    return f"the server ended the reply with a finish reason chatcli does not know ({clean_raw(raw)})"


def clean_raw(raw: str) -> str:
    """A server's finish reason, short and on one line (the views sanitize it again)."""
    text = " ".join(str(raw).split())
    return text if len(text) <= 40 else text[:39] + "…"


def usage_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
