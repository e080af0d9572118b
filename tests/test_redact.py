"""Secrets never show: Secret's repr, masking, and redaction of key-shaped text."""

from __future__ import annotations

from chatcli.redact import Secret, mask, redact

CANARY = "sk-canary-0123456789abcdef"
ANT = "sk-ant-canary-0123456789abcdef"


def test_secret_never_shows_its_value() -> None:
    secret = Secret(CANARY)
    for shown in (repr(secret), str(secret), f"{secret}", repr([secret]), repr({"k": secret})):
        assert CANARY not in shown and "cdef" in shown
    assert secret.reveal() == CANARY and bool(secret) and not Secret("")


def test_mask_keeps_only_a_hint() -> None:
    assert mask(CANARY) == "sk-…cdef"
    assert mask("short") == "…" and mask("") == ""


def test_redact_known_values_and_key_shapes() -> None:
    text = (f"bad key {CANARY} and {ANT}; Authorization: Bearer abcdef123456; x-api-key: zzzzzz999999; "
            f"gateway token tok-secret-value-1")
    out = redact(text, secrets=("tok-secret-value-1",))
    for leaked in (CANARY, ANT, "abcdef123456", "zzzzzz999999", "tok-secret-value-1"):
        assert leaked not in out
    assert "bad key" in out and "gateway token" in out


def test_redact_leaves_ordinary_text_alone() -> None:
    text = "the model said: skip this, ask later; authorization is needed"
    assert redact(text) == text


def test_credential_names() -> None:
    from chatcli.redact import is_credential_name

    for name in ("OPENAI_API_KEY", "gateway_token", "DB_PASSWORD", "MY_SECRET"):
        assert is_credential_name(name), name
    for name in ("OPENAI_BASE_URL", "HOME", "CHATCLI_MODEL"):
        assert not is_credential_name(name), name
