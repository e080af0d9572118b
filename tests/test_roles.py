"""roles.py: `[roles.NAME]` parsing and its errors (worded like every config error), the closest
name for an unknown role, and flags beating the role's values."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest

from chatcli import roles
from chatcli.errors import ConfigError, ExitCode, UsageError

CONFIG = """\
default_model = "openai:gpt-4o-mini"

[roles.reviewer]
system = "You review code. Bugs first."
model = "anthropic:claude-sonnet-4-5"
temperature = 0.2
max_tokens = 1500

[roles.shell]
system = "Answer with one shell command."
"""


def parse(text: str, path: str = "/cfg/config.toml") -> dict[str, roles.Role]:
    data: dict[str, Any] = tomllib.loads(text)
    return roles.parse_roles(data.get("roles", {}), source=path, text=text)


def config_error(text: str) -> ConfigError:
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert "\n" not in info.value.message
    assert info.value.exit_code == ExitCode.USAGE
    return info.value


def test_parse() -> None:
    found = parse(CONFIG)
    assert found == {
        "reviewer": roles.Role(name="reviewer", system="You review code. Bugs first.",
                               model="anthropic:claude-sonnet-4-5", temperature=0.2, max_tokens=1500),
        "shell": roles.Role(name="shell", system="Answer with one shell command."),
    }
    assert roles.parse_roles({}, source="x.toml") == {}
    with pytest.raises(AttributeError):
        found["shell"].system = "changed"  # type: ignore[misc]  # frozen


def test_integer_temperature_becomes_a_float() -> None:
    role = parse('[roles.r]\nsystem = "s"\ntemperature = 1\n')["r"]
    assert role.temperature == 1.0 and isinstance(role.temperature, float)


def test_unknown_key_names_file_line_role_and_key() -> None:
    err = config_error('[roles.rev]\nsystem = "s"\ntemprature = 0.5\n')
    assert err.message == '/cfg/config.toml:3: roles.rev.temprature: unknown key (did you mean "temperature"?)'
    assert (err.path, err.line, err.key) == ("/cfg/config.toml", 3, "roles.rev.temprature")


@pytest.mark.parametrize(("body", "line", "key", "expected"), [
    ("system = 3", 2, "system", "expected a string, got 3"),
    ('system = "s"\nmodel = ""', 3, "model", "expected a non-empty string, got \"\""),
    ('system = "s"\ntemperature = 2.5', 3, "temperature", "expected a number from 0 to 2, got 2.5"),
    ('system = "s"\ntemperature = "hot"', 3, "temperature", "expected a number from 0 to 2, got \"hot\""),
    ('system = "s"\nmax_tokens = 0', 3, "max_tokens", "expected a whole number ≥ 1, got 0"),
    ('system = "s"\nmax_tokens = true', 3, "max_tokens", "expected a whole number ≥ 1, got true"),
])
def test_wrong_types(body: str, line: int, key: str, expected: str) -> None:
    err = config_error(f"[roles.r]\n{body}\n")
    assert err.message == f"/cfg/config.toml:{line}: roles.r.{key}: {expected}"


def test_missing_system_and_bad_shapes() -> None:
    err = config_error('\n[roles.r]\nmodel = "x"\n')
    assert err.message == '/cfg/config.toml:2: roles.r: missing "system" (the role\'s system prompt)'
    err = config_error('[roles]\nr = "just a string"\n')
    assert "roles.r: expected a table ([roles.r]), got \"just a string\"" in err.message
    err = config_error('[roles."a:b"]\nsystem = "s"\n')
    assert "roles.a:b: role names may use letters" in err.message


def test_without_text_there_is_no_line() -> None:
    with pytest.raises(ConfigError) as info:
        roles.parse_roles({"r": {"sytem": "x"}}, source="c.toml")
    assert info.value.message == 'c.toml: roles.r.sytem: unknown key (did you mean "system"?)'


def test_find_role_and_closest_name() -> None:
    found = parse(CONFIG)
    assert roles.find_role(found, "shell") is found["shell"]
    with pytest.raises(UsageError) as info:
        roles.find_role(found, "reveiwer")
    assert info.value.exit_code == ExitCode.USAGE
    assert info.value.message == 'unknown role "reveiwer" (did you mean "reviewer"?); roles: reviewer, shell'
    with pytest.raises(UsageError, match=r'^unknown role "zzz"; roles: reviewer, shell$'):
        roles.find_role(found, "zzz")
    with pytest.raises(UsageError, match="no roles are defined"):
        roles.find_role({}, "shell")


def test_flags_beat_the_role() -> None:
    role = parse(CONFIG)["reviewer"]
    none = roles.apply(role, system=None, model=None, temperature=None, max_tokens=None)
    assert none == roles.Effective(system=role.system, model="anthropic:claude-sonnet-4-5", temperature=0.2,
                                   max_tokens=1500)
    flags = roles.apply(role, system="-s text", model="openai:gpt-4o", temperature=0.0, max_tokens=10)
    assert flags == roles.Effective(system="-s text", model="openai:gpt-4o", temperature=0.0, max_tokens=10)
    # 0 and "" are explicit values, not "not given"
    partial = roles.apply(role, system="", model=None, temperature=0.0, max_tokens=None)
    assert partial == roles.Effective(system="", model=role.model, temperature=0.0, max_tokens=1500)
    # a role without a model leaves the model to the caller's usual resolution
    shell = parse(CONFIG)["shell"]
    assert roles.apply(shell, system=None, model=None, temperature=None, max_tokens=None).model is None
    assert roles.apply(None, system=None, model="m", temperature=None, max_tokens=3) == roles.Effective(
        system=None, model="m", temperature=None, max_tokens=3)


def test_describe_roles() -> None:
    text = roles.describe_roles(parse(CONFIG))
    assert text == ("reviewer (model anthropic:claude-sonnet-4-5, temperature 0.2, max_tokens 1500): "
                    "You review code. Bugs first.\nshell: Answer with one shell command.\n")
    odd = roles.describe_roles({"x": roles.Role("x", "line one\n\x1b[2Jline two " + "y" * 80)})
    assert "\x1b" not in odd and odd.count("\n") == 1 and "…" in odd
    assert "no roles defined" in roles.describe_roles({})
