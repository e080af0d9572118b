"""The pure parts of chatcli.tools: server tables, API names, result flattening and caps, grants."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from chatcli.errors import ConfigError, UsageError
from chatcli.tools.grants import SavedGrants, ToolPolicy, parse_allow_flag
from chatcli.tools.names import MAX_LEN, ToolNames
from chatcli.tools.results import ToolOutcome, cap, flatten
from chatcli.tools.servers import ServerConfig, parse_servers

# -- servers ---------------------------------------------------------------------------------------


def test_stdio_server_with_defaults_and_env_expansion() -> None:
    servers = parse_servers({"time": {"command": "mcp-server-time", "args": ["--local-timezone", "UTC"],
                                      "env": {"TOKEN": "${TZ_TOKEN}", "PLAIN": "x-${TZ_TOKEN}-y"},
                                      "allow": ["get_current_time"]}},
                            source="config.toml", environ={"TZ_TOKEN": "t0k"})
    time = servers["time"]
    assert time.transport == "stdio"
    assert time.args == ("--local-timezone", "UTC")
    assert dict(time.env) == {"TOKEN": "t0k", "PLAIN": "x-t0k-y"}
    assert (time.enabled, time.startup_timeout, time.timeout) == (True, 15.0, 60.0)
    assert time.allow == frozenset({"get_current_time"})
    assert time.missing_env == ()


def test_http_server_and_missing_variable_recorded_not_raised() -> None:
    servers = parse_servers({"remote": {"url": "https://example.test/mcp", "headers": {"Authorization": "${NOPE}"},
                                        "enabled": False, "timeout": 5, "startup_timeout": 2.5}},
                            source="config.toml", environ={})
    remote = servers["remote"]
    assert remote.transport == "http"
    assert remote.missing_env == ("NOPE",)
    assert (remote.enabled, remote.timeout, remote.startup_timeout) == (False, 5.0, 2.5)
    assert remote.identity == "url https://example.test/mcp"


@pytest.mark.parametrize(("table", "expected"), [
    ({"s": {"command": "x", "comand": "y"}},
     'config.toml: mcp.servers.s.comand: unknown key (did you mean "command"?)'),
    ({"s": {"command": 3}}, "config.toml: mcp.servers.s.command: expected a non-empty string, got 3"),
    ({"s": {"command": "x", "args": "a b"}}, "config.toml: mcp.servers.s.args: expected an array of strings"),
    ({"s": {"command": "x", "env": {"A": 1}}}, "config.toml: mcp.servers.s.env.A: expected a string, got 1"),
    ({"s": {"command": "x", "enabled": "yes"}}, "config.toml: mcp.servers.s.enabled: expected true or false"),
    ({"s": {"command": "x", "timeout": 0}}, "config.toml: mcp.servers.s.timeout: expected a number of seconds"),
    ({"s": {"command": "x", "timeout": True}}, "config.toml: mcp.servers.s.timeout: expected a number of seconds"),
    ({"s": {"args": ["a"]}}, "config.toml: mcp.servers.s: needs either command"),
    ({"s": {"command": "x", "url": "http://h/mcp"}}, "config.toml: mcp.servers.s: needs either command"),
    ({"s": {"url": "http://h/mcp", "args": []}}, "config.toml: mcp.servers.s.args: only for a local server"),
    ({"s": {"command": "x", "headers": {}}}, "config.toml: mcp.servers.s.headers: only for an HTTP server"),
    ({"s": {"url": "ftp://h"}}, "config.toml: mcp.servers.s.url: expected an http:// or https:// URL"),
    ({"s": "mcp-server-time"}, "config.toml: mcp.servers.s: expected a table ([mcp.servers.s]), got a string"),
])
def test_bad_tables_name_server_and_key(table: dict[str, object], expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_servers(table, source="config.toml")
    assert str(caught.value).startswith(expected)


def test_error_carries_line_from_locator() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_servers({"s": {"command": 1}}, source="c.toml",
                      line_of=lambda table, key: 7 if (table, key) == (("mcp", "servers", "s"), "command") else None)
    assert str(caught.value).startswith("c.toml:7: mcp.servers.s.command:")


def test_identity_is_command_and_args_only() -> None:
    a = ServerConfig(name="a", command="srv", args=("x y",), env={"K": "1"})
    b = ServerConfig(name="a", command="srv", args=("x", "y"), env={"K": "2"})
    c = ServerConfig(name="a", command="srv", args=("x y",), env={"K": "2"}, cwd="/tmp")
    assert a.identity != b.identity  # ["x y"] is not ["x", "y"]
    assert a.identity == c.identity  # env and cwd are not part of it


# -- names -----------------------------------------------------------------------------------------

_SAFE = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


def test_names_are_safe_reversible_and_collision_free() -> None:
    pairs = [("time", "get_current_time"), ("a_b", "c"), ("a", "b_c"), ("a__b", "c"), ("a", "b__c"),
             ("fs", "read.file"), ("fs", "read_file"), ("x" * 40, "y" * 40), ("git", "git.status"),
             ("search", "search"), ("web", "search")]
    names = ToolNames(pairs)
    api = [names.api_name(s, t) for s, t in pairs]
    assert len(set(api)) == len(pairs)
    for (server, tool), name in zip(pairs, api, strict=True):
        assert set(name) <= _SAFE and 0 < len(name) <= MAX_LEN
        assert names.lookup(name) == (server, tool)
    assert names.api_name("time", "get_current_time") == "time__get_current_time"  # plain when it can be
    assert names.api_name("a_b", "c") == "a_b__c"  # underscores in a server name are not a problem
    # "a__b"+"c" and "a"+"b__c" would both be a__b__c: both get a hash instead.
    assert names.api_name("a__b", "c") != "a__b__c" and names.api_name("a", "b__c") != "a__b__c"
    assert names.lookup("nobody__gave_this_out") is None


def test_names_do_not_depend_on_order() -> None:
    pairs = [("fs", "read.file"), ("fs", "read_file"), ("time", "get_current_time"), ("x" * 70, "t")]
    forward = ToolNames(pairs)
    backward = ToolNames(reversed(pairs))
    assert list(forward) == list(backward)


def test_a_tool_named_like_a_hashed_name_still_gets_its_own() -> None:
    first = ToolNames([("fs", "read.file"), ("fs", "read_file")])
    hashed = first.api_name("fs", "read.file")
    server, _, tool = hashed.partition("__")
    both = ToolNames([("fs", "read.file"), ("fs", "read_file"), (server, tool)])
    assert len({both.api_name(*p) for p in [("fs", "read.file"), ("fs", "read_file"), (server, tool)]}) == 3


# -- results ---------------------------------------------------------------------------------------


def _text(text: str) -> SimpleNamespace:
    return SimpleNamespace(type="text", text=text)


def test_flatten_text_image_structured_and_error() -> None:
    result = SimpleNamespace(content=[_text("one"), SimpleNamespace(type="image", data="QUJD", mime_type="image/png"),
                                      _text("two")], structured_content=None, is_error=False)
    assert flatten(result) == ("one\n\n[image: image/png, 3 bytes, not shown]\n\ntwo", False)
    # Structured content already sent as text is not repeated; without a text block it is the text.
    same = SimpleNamespace(content=[_text('{"a": 1}')], structured_content={"a": 1}, is_error=False)
    assert flatten(same) == ('{"a": 1}', False)
    wrapped = SimpleNamespace(content=[_text("14")], structured_content={"result": 14}, is_error=False)
    assert flatten(wrapped) == ("14", False)
    only = SimpleNamespace(content=[], structured_content={"a": 1}, is_error=True)
    assert flatten(only) == ('{\n  "a": 1\n}', True)


def test_cap_announces_the_cut_and_stays_within_the_limit() -> None:
    text = "HEAD" + "x" * 100_000 + "TAIL"
    capped = cap(text, 1000)
    assert len(capped) <= 1000
    assert capped.startswith("HEAD") and capped.endswith("TAIL")
    cut = len(text) - len(capped.replace(capped[capped.index("\n[..."):capped.index("...]\n") + 5], ""))
    assert f"[... {cut:,} characters cut ...]" in capped
    assert cap("short", 1000) == "short"
    outcome = ToolOutcome(server="s", tool="t", status="ok", text=text, is_error=False, seconds=0.1)
    assert outcome.text == text and len(outcome.for_model(500)) <= 500


# -- grants ----------------------------------------------------------------------------------------


def test_allow_flag_parsing() -> None:
    assert parse_allow_flag("time:get_current_time") == ("time", "get_current_time")
    assert parse_allow_flag("a:b:tool") == ("a:b", "tool")
    for bad in ("time", ":tool", "time:"):
        with pytest.raises(UsageError):
            parse_allow_flag(bad)


def test_policy_sources(tmp_path: Path) -> None:
    servers = {"time": ServerConfig(name="time", command="mcp-server-time", allow=frozenset({"get_current_time"})),
               "fs": ServerConfig(name="fs", command="fs-server", args=("/data",))}
    saved = SavedGrants(tmp_path / "data")
    policy = ToolPolicy(servers, saved=saved, flags=[("fs", "list_directory")])
    assert policy.reason("time", "get_current_time") == "config"
    assert policy.reason("fs", "list_directory") == "flag"
    assert policy.reason("fs", "read_file") is None
    assert policy.reason("nosuch", "get_current_time") is None
    policy.allow_for_chat("fs", "read_file")
    assert policy.reason("fs", "read_file") == "chat"
    assert ToolPolicy(servers, saved=saved).reason("fs", "read_file") is None  # chat grants stay in that chat
    policy.allow_always("fs", "write_file")
    assert ToolPolicy(servers, saved=SavedGrants(tmp_path / "data")).reason("fs", "write_file") == "saved"


def test_saved_grant_is_private_and_bound_to_identity(tmp_path: Path) -> None:
    data = tmp_path / "data"
    fs = ServerConfig(name="fs", command="fs-server", args=("/data",))
    SavedGrants(data).add(fs, "read_file")
    path = data / "tool-grants.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
    assert SavedGrants(data).allows(fs, "read_file")
    moved = ServerConfig(name="fs", command="fs-server", args=("/",))  # same name, different server
    other = ServerConfig(name="fs", command="evil-server", args=("/data",))
    assert not SavedGrants(data).allows(moved, "read_file")
    assert not SavedGrants(data).allows(other, "read_file")
    assert json.loads(path.read_text())["grants"] == [
        {"server": "fs", "identity": fs.identity, "tool": "read_file"}]


def test_broken_grants_file_means_ask_again(tmp_path: Path) -> None:
    (tmp_path / "tool-grants.json").write_text("{not json")
    warnings: list[str] = []
    grants = SavedGrants(tmp_path, warn=warnings.append)
    assert not grants.allows(ServerConfig(name="fs", command="x"), "t")
    assert warnings and "ignoring saved tool grants" in warnings[0]
