"""chatcli/config/ in-process: precedence, .env, validation messages, model resolution, show/init text."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from chatcli import config
from chatcli.config import Overrides, load, resolve
from chatcli.errors import ConfigError, NoProviderError, UsageError

KEY = "sk-canary-0123456789abcdefWXYZ"
ROOT = Path(__file__).resolve().parent.parent


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def settings_for(tmp_path: Path, toml: str | None = None, environ: dict[str, str] | None = None,
                 overrides: Overrides | None = None) -> config.Loaded:
    env = {"HOME": str(tmp_path / "home"), "XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    if toml is not None:
        path = write(tmp_path / "c.toml", toml)
        env["CHATCLI_CONFIG"] = str(path)
    env.update(environ or {})
    return load(env, tmp_path, overrides)


@pytest.fixture
def no_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "local_available", lambda: False)


# -- precedence --------------------------------------------------------------------------------


def test_flag_beats_env_beats_file_beats_default(tmp_path: Path) -> None:
    toml = 'default_model = "openai:from-file"\nsystem = "file"\nmax_tokens = 100\ntemperature = 0.1\n'
    env = {"CHATCLI_MODEL": "openai:from-env", "CHATCLI_SYSTEM": "env", "CHATCLI_MAX_TOKENS": "200"}
    flags = Overrides(model="openai:from-flag", max_tokens=300)
    s = settings_for(tmp_path, toml, env, flags).settings
    assert (s.default_model, s.system, s.max_tokens, s.temperature) == ("openai:from-flag", "env", 300, 0.1)
    s = settings_for(tmp_path, toml, env).settings
    assert (s.default_model, s.max_tokens) == ("openai:from-env", 200)
    s = settings_for(tmp_path, toml).settings
    assert (s.default_model, s.system, s.max_tokens) == ("openai:from-file", "file", 100)
    s = settings_for(tmp_path).settings
    assert (s.default_model, s.system, s.max_tokens, s.temperature, s.save, s.render) == (
        None, None, None, None, True, "auto")


def test_save_and_render_precedence(tmp_path: Path) -> None:
    assert settings_for(tmp_path, "save = false\n").settings.save is False
    assert settings_for(tmp_path, environ={"CHATCLI_NO_SAVE": "1"}).settings.save is False
    assert settings_for(tmp_path, overrides=Overrides(no_save=True)).settings.save is False
    s = settings_for(tmp_path, 'render = "plain"\n', {"CHATCLI_RENDER": "markdown"}).settings
    assert s.render == "markdown"
    assert settings_for(tmp_path, 'render = "plain"\n', overrides=Overrides(render="markdown")).settings.render \
        == "markdown"


def test_data_dir_chatcli_home_beats_file(tmp_path: Path) -> None:
    s = settings_for(tmp_path, 'data_dir = "/x/file"\n', {"CHATCLI_HOME": "/x/env"}).settings
    assert s.data_dir == Path("/x/env")
    assert settings_for(tmp_path, 'data_dir = "/x/file"\n').settings.data_dir == Path("/x/file")
    assert settings_for(tmp_path).settings.data_dir == tmp_path / "home" / ".local/share/chatcli"


def test_bad_env_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="CHATCLI_MAX_TOKENS='lots': expected a whole number"):
        settings_for(tmp_path, environ={"CHATCLI_MAX_TOKENS": "lots"})
    with pytest.raises(ConfigError, match="CHATCLI_TEMPERATURE"):
        settings_for(tmp_path, environ={"CHATCLI_TEMPERATURE": "7"})
    with pytest.raises(ConfigError, match="CHATCLI_NO_SAVE"):
        settings_for(tmp_path, environ={"CHATCLI_NO_SAVE": "maybe"})


def test_config_path_order(tmp_path: Path) -> None:
    env = {"HOME": "/h", "XDG_CONFIG_HOME": "/xdg"}
    assert config.config_path(env) == (Path("/xdg/chatcli/config.toml"), False)
    assert config.config_path({**env, "CHATCLI_CONFIG": "/e.toml"}) == (Path("/e.toml"), True)
    assert config.config_path({**env, "CHATCLI_CONFIG": "/e.toml"}, Path("/f.toml")) == (Path("/f.toml"), True)
    assert config.config_path({"HOME": "/h"}) == (Path("/h/.config/chatcli/config.toml"), False)


def test_missing_default_file_is_fine_but_asked_for_file_is_not(tmp_path: Path) -> None:
    settings_for(tmp_path)
    with pytest.raises(ConfigError, match=r"nope\.toml: no such file"):
        settings_for(tmp_path, environ={"CHATCLI_CONFIG": str(tmp_path / "nope.toml")})


# -- .env ----------------------------------------------------------------------------------------


def test_dotenv_fills_gaps_never_overrides_and_stays_out_of_os_environ(tmp_path: Path) -> None:
    write(tmp_path / ".env", f"OPENAI_API_KEY={KEY}\nCHATCLI_SYSTEM=from-cwd-dotenv\n")
    write(tmp_path / "xdg" / "chatcli" / ".env", "CHATCLI_SYSTEM=from-config-dotenv\nCHATCLI_MAX_TOKENS=42\n")
    loaded = settings_for(tmp_path)
    assert loaded.settings.providers["openai"].api_key is not None
    assert loaded.settings.providers["openai"].api_key.reveal() == KEY
    assert loaded.settings.system == "from-cwd-dotenv"  # cwd .env beats the config dir's
    assert loaded.settings.max_tokens == 42  # the config dir's .env still fills what cwd's lacks
    assert "OPENAI_API_KEY" not in os.environ  # never exported to child processes
    real = settings_for(tmp_path, environ={"OPENAI_API_KEY": "sk-real-environment-key", "CHATCLI_SYSTEM": "real"})
    key = real.settings.providers["openai"].api_key
    assert key is not None and key.reveal() == "sk-real-environment-key"
    assert real.settings.system == "real"


def test_dotenv_next_to_explicit_config(tmp_path: Path) -> None:
    write(tmp_path / "conf" / ".env", "ANTHROPIC_API_KEY=sk-ant-from-config-dir\n")
    write(tmp_path / "conf" / "my.toml", "")
    loaded = load({"HOME": str(tmp_path)}, tmp_path / "elsewhere", Overrides(config=tmp_path / "conf" / "my.toml"))
    assert loaded.settings.providers["anthropic"].api_key is not None


# -- validation ----------------------------------------------------------------------------------


def test_invalid_toml_names_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        settings_for(tmp_path, 'system = "ok"\nmax_tokens = \n')
    msg = info.value.message
    assert msg.startswith(f"{tmp_path / 'c.toml'}:2: max_tokens: invalid TOML")
    assert "Traceback" not in msg


def test_unknown_top_level_key_names_line_and_suggests(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        settings_for(tmp_path, '# comment\nsystem = "x"\n\nmax_token = 5\n')
    assert info.value.line == 4
    assert info.value.key == "max_token"
    assert 'did you mean "max_tokens"' in info.value.message
    assert f"{tmp_path / 'c.toml'}:4: max_token: unknown key" in info.value.message


def test_unknown_provider_key_is_found_in_its_table(tmp_path: Path) -> None:
    toml = ('[providers.a]\ntype = "openai"\ntimeout = 5\n\n'
            '[providers.ollama]\ntype = "openai"\ntimeout = 5\nbse_url = "http://x"\n')
    with pytest.raises(ConfigError) as info:
        settings_for(tmp_path, toml)
    assert (info.value.line, info.value.key) == (8, "providers.ollama.bse_url")
    assert 'did you mean "base_url"' in info.value.message


def test_unknown_key_in_inline_table(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        settings_for(tmp_path, 'save = true\nproviders = { x = { type = "openai", colour = 1 } }\n')
    assert (info.value.line, info.value.key) == (2, "providers.x.colour")


@pytest.mark.parametrize(("toml", "line", "key", "expected"), [
    ('max_tokens = "many"\n', 1, "max_tokens", 'expected a whole number ≥ 1, got "many"'),
    ('[providers.x]\ntype = "gemini"\n', 2, "providers.x.type", 'or "local", got "gemini"'),
    ('save = "yes"\n', 1, "save", 'expected true or false, got "yes"'),
    ('system = "x"\ntemperature = 3\n', 2, "temperature", "expected a number from 0 to 2, got 3"),
    ('save = "yes"\n', 1, "save", "expected true or false"),
    ('render = "fancy"\n', 1, "render", '"auto", "plain" or "markdown"'),
    ('[providers.x]\ntype = "openai"\nmax_retries = -1\n', 3, "providers.x.max_retries", "≥ 0"),
    ('[providers.x]\ntype = "grpc"\n', 2, "providers.x.type", '"openai", "anthropic" or "local"'),
    ('[providers.x]\ntype = "openai"\nmodels = "a"\n', 3, "providers.x.models", "a list of strings"),
    ('[providers.x]\ntype = "openai"\nheaders = { a = 1 }\n', 3, "providers.x.headers.a", "a string"),
    ('[aliases]\nfast = 1\n', 2, "aliases.fast", "a non-empty string"),
    ('[prices]\nm = [1]\n', 2, "prices.m", "[input, output]"),
    ('aliases = 3\n', 1, "aliases", "expected a table"),
])
def test_wrong_types_name_line_and_key(tmp_path: Path, toml: str, line: int, key: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        settings_for(tmp_path, toml)
    assert (info.value.line, info.value.key) == (line, key)
    assert expected in info.value.message


def test_new_provider_needs_a_type(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"c\.toml:1: providers\.x: missing \"type\""):
        settings_for(tmp_path, '[providers.x]\nbase_url = "http://x"\n')


def test_api_key_in_file_is_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="api_key_env") as info:
        settings_for(tmp_path, f'[providers.openai]\napi_key = "{KEY}"\n')
    assert KEY not in info.value.message
    assert info.value.line == 2


def test_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_bytes(b'system = "ok"\nsystem2 = "\xff"\n')
    with pytest.raises(ConfigError, match=r"c\.toml:2: not UTF-8"):
        load({"CHATCLI_CONFIG": str(path), "HOME": str(tmp_path)}, tmp_path)


def test_example_config_is_valid_and_is_what_init_writes(tmp_path: Path) -> None:
    example = (ROOT / "config.example.toml").read_text()
    assert example == config.example_config()
    loaded = settings_for(tmp_path, example)
    assert loaded.settings.save is True
    # every documented key is a real key: uncomment all `# key = value` lines of the top level
    for key in config.TOP_KEYS:
        assert f"# {key} = " in example, key
    for key in config.PROVIDER_KEYS:
        assert f"#   {key}" in example, key


def test_write_example_refuses_to_overwrite_and_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "config.toml"
    config.write_example(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    path.write_text("mine = 1\n")
    with pytest.raises(UsageError, match="--force"):
        config.write_example(path)
    assert path.read_text() == "mine = 1\n"
    config.write_example(path, force=True)
    assert path.read_text() == config.example_config()


# -- providers and resolution ---------------------------------------------------------------------


def test_builtin_base_url_env_beats_file(tmp_path: Path) -> None:
    toml = '[providers.openai]\nbase_url = "http://file/v1"\n'
    s = settings_for(tmp_path, toml, {"OPENAI_BASE_URL": "http://env/v1"}).settings
    assert s.providers["openai"].base_url == "http://env/v1"
    assert settings_for(tmp_path, toml).settings.providers["openai"].base_url == "http://file/v1"


def test_headers_interpolate_env_and_report_missing(tmp_path: Path) -> None:
    toml = ('[providers.gw]\ntype = "openai"\nbase_url = "http://gw/v1"\n'
            'headers = { "x-api-key" = "${GATEWAY_KEY}", "x-team" = "t-${TEAM}" }\n')
    s = settings_for(tmp_path, toml, {"GATEWAY_KEY": "gw-secret-value", "TEAM": "7"}).settings
    headers = {k: v.reveal() for k, v in s.providers["gw"].headers}
    assert headers == {"x-api-key": "gw-secret-value", "x-team": "t-7"}
    assert "gw-secret-value" not in repr(s.providers["gw"])
    s = settings_for(tmp_path, toml, {"TEAM": "7"}).settings
    with pytest.raises(ConfigError, match="GATEWAY_KEY"):
        resolve(s, "gw:m")


def test_resolution_forms(tmp_path: Path) -> None:
    toml = ('default_model = "fast"\n[aliases]\nfast = "quick"\nquick = "ollama:llama3:8b"\nsmart = "anthropic"\n'
            '[providers.ollama]\ntype = "openai"\nbase_url = "http://localhost:11434/v1"\n'
            'default_model = "llama3.2"\nmodels = ["qwen2.5-coder:7b"]\n')
    s = settings_for(tmp_path, toml, {"OPENAI_API_KEY": KEY, "ANTHROPIC_API_KEY": "sk-ant-xxxxxxxx"}).settings
    assert resolve(s).spec == "ollama:llama3:8b"  # alias chain, a model tag containing ':'
    assert resolve(s, "ollama").spec == "ollama:llama3.2"
    assert resolve(s, "smart").spec == "anthropic:claude-sonnet-4-5"
    assert resolve(s, "openai:gpt-4.1").spec == "openai:gpt-4.1"
    assert resolve(s, "qwen2.5-coder:7b").spec == "ollama:qwen2.5-coder:7b"  # from a models list
    assert resolve(s, "claude-haiku-4-5").spec == "anthropic:claude-haiku-4-5"
    assert resolve(s, "gpt-5").spec == "openai:gpt-5"  # vendor naming
    with pytest.raises(UsageError, match='unknown model "mystery"'):
        resolve(s, "mystery")


def test_alias_loop_is_a_config_error(tmp_path: Path) -> None:
    s = settings_for(tmp_path, '[aliases]\na = "b"\nb = "a"\n').settings
    with pytest.raises(ConfigError, match="alias loop: a -> b -> a"):
        resolve(s, "a")


def test_named_endpoint_needs_no_key(tmp_path: Path) -> None:
    toml = '[providers.vllm]\ntype = "openai"\nbase_url = "http://127.0.0.1:8000/v1"\ndefault_model = "m"\n'
    s = settings_for(tmp_path, toml).settings
    r = resolve(s, "vllm")
    assert (r.provider.base_url, r.model, r.provider.api_key) == ("http://127.0.0.1:8000/v1", "m", None)


def test_explicit_provider_without_key(tmp_path: Path, no_local: None) -> None:
    s = settings_for(tmp_path).settings
    with pytest.raises(NoProviderError, match="set ANTHROPIC_API_KEY"):
        resolve(s, "anthropic")
    with pytest.raises(NoProviderError, match=r'pip install "chatcli\[local\]"'):
        resolve(s, "local")


def test_auto_default_order(tmp_path: Path, no_local: None) -> None:
    both = {"OPENAI_API_KEY": KEY, "ANTHROPIC_API_KEY": "sk-ant-xxxxxxxx"}
    assert resolve(settings_for(tmp_path, environ=both).settings).spec == "openai:gpt-4o-mini"
    only_anthropic = {"ANTHROPIC_API_KEY": "sk-ant-xxxxxxxx"}
    assert resolve(settings_for(tmp_path, environ=only_anthropic).settings).spec == "anthropic:claude-sonnet-4-5"
    # a base URL alone does not make the built-in openai the automatic choice: a key must be present
    with pytest.raises(NoProviderError):
        resolve(settings_for(tmp_path, environ={"OPENAI_BASE_URL": "http://x/v1"}).settings)


def test_auto_default_local_when_installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(config, "local_available", lambda: True)
    monkeypatch.setattr(config, "bundled_model_available", lambda: True)
    assert resolve(settings_for(tmp_path).settings).spec == "local:smollm2"


def test_nothing_usable_is_one_message_with_every_fix(tmp_path: Path, no_local: None) -> None:
    with pytest.raises(NoProviderError) as info:
        resolve(settings_for(tmp_path).settings)
    msg = info.value.message
    assert "\n" not in msg
    for part in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", ".env", 'pip install "chatcli[local]"'):
        assert part in msg
    assert info.value.exit_code == 2


# -- describing ----------------------------------------------------------------------------------


def test_describe_masks_keys(tmp_path: Path) -> None:
    toml = ('[providers.gw]\ntype = "openai"\nbase_url = "http://gw/v1"\n'
            'headers = { "x-api-key" = "${GATEWAY_KEY}" }\n')
    loaded = settings_for(tmp_path, toml, {"OPENAI_API_KEY": KEY, "GATEWAY_KEY": "gateway-secret-1234"})
    text = config.describe(loaded)
    assert KEY not in text and "gateway-secret-1234" not in text
    assert "sk-…WXYZ" in text and "…1234" in text
    assert "model used when none is given: openai:gpt-4o-mini" in text


def test_describe_models_marks_default_and_missing_keys(tmp_path: Path, no_local: None) -> None:
    toml = '[aliases]\nfast = "openai:gpt-4o-mini"\n'
    text = config.describe_models(settings_for(tmp_path, toml, {"OPENAI_API_KEY": KEY}))
    assert "  * openai:gpt-4o-mini" in text
    assert "ANTHROPIC_API_KEY missing" in text
    assert "OPENAI_API_KEY set" in text
    assert "fast -> openai:gpt-4o-mini" in text
    assert KEY not in text
    text = config.describe_models(settings_for(tmp_path))
    assert "default: none" in text and "*" not in text


def test_locate_handles_quoted_and_dotted_keys() -> None:
    text = '[providers."my.gw"]\ntype = "openai"\n"odd" = 1\n[x]\nproviders.y.z = 1\n'
    assert config.locate(text, ("providers", "my.gw"), "odd") == 3
    assert config.locate(text, ("providers", "my.gw"), None) == 1
    assert config.locate(text, ("x", "providers", "y"), "z") == 5


# -- a bare model name several providers offer (issue 16, item 15) ------------------------------------

GATEWAY = ('[providers.gw]\ntype = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
           'models = ["gpt-4o-mini", "llama-3"]\n')


def test_a_bare_name_goes_to_the_provider_that_can_run_it(tmp_path: Path, no_local: None) -> None:
    # The built-in openai lists gpt-4o-mini too, and comes first, but has no key here.
    s = settings_for(tmp_path, GATEWAY).settings
    assert resolve(s, "gpt-4o-mini").spec == "gw:gpt-4o-mini"
    assert resolve(s, "llama-3").spec == "gw:llama-3"


def test_a_bare_name_two_usable_providers_offer_is_ambiguous(tmp_path: Path, no_local: None) -> None:
    s = settings_for(tmp_path, GATEWAY, {"OPENAI_API_KEY": KEY}).settings
    with pytest.raises(UsageError) as info:
        resolve(s, "gpt-4o-mini")
    assert info.value.message == ('model "gpt-4o-mini" is offered by 2 providers: '
                                  "use -m openai:gpt-4o-mini or -m gw:gpt-4o-mini")
    assert resolve(s, "gw:gpt-4o-mini").spec == "gw:gpt-4o-mini"  # the explicit forms work
    assert resolve(s, "openai:gpt-4o-mini").spec == "openai:gpt-4o-mini"


def test_a_bare_name_no_offering_provider_can_run(tmp_path: Path, no_local: None) -> None:
    toml = ('[providers.gw]\ntype = "openai"\nbase_url = "http://127.0.0.1:9/v1"\nmodels = ["gpt-4o-mini"]\n'
            'headers = { "x-api-key" = "${GW_KEY}" }\n')
    s = settings_for(tmp_path, toml).settings
    with pytest.raises(NoProviderError) as info:
        resolve(s, "gpt-4o-mini")
    msg = info.value.message
    assert msg.startswith('model "gpt-4o-mini" is offered by openai, gw, and none can run it now')
    assert "set OPENAI_API_KEY" in msg and "GW_KEY" in msg


def test_an_alias_to_an_unknown_provider_is_named(tmp_path: Path, no_local: None) -> None:
    toml = '[aliases]\nlab = "mylab:big-model"\nfast = "openai:gpt-4o-mini"\nquick = "fast"\n'
    loaded = settings_for(tmp_path, toml, {"OPENAI_API_KEY": KEY})
    with pytest.raises(ConfigError) as info:
        resolve(loaded.settings, "lab")
    assert 'alias "lab" points to "mylab:big-model": no provider is named "mylab"' in info.value.message
    text = config.describe_models(loaded)
    assert 'lab -> mylab:big-model  - broken: no provider is named "mylab"' in text
    assert "quick -> fast  (= openai:gpt-4o-mini)" in text
    assert "fast -> openai:gpt-4o-mini\n" in text


# -- a world-readable project .env warns only when it holds a key ---------------------------------------

@pytest.mark.parametrize(("text", "warns"), [
    ("DEBUG=1\nTOKENIZERS_PARALLELISM=false\nKEYBOARD_LAYOUT=us\nPORT=8000\n", False),  # a project .env
    ("OPENAI_API_KEY=\nGH_TOKEN=\n", False),  # named like keys, holding none
    (f"OPENAI_API_KEY={KEY}\n", True),
    ("GH_TOKEN=ghp_abcdefghijkl\n", True),
    (f"SOMETHING={KEY}\n", True),  # a key-shaped value under any name
])
def test_a_0644_dotenv_warns_only_when_it_holds_a_key(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                      text: str, warns: bool) -> None:
    dotenv = write(tmp_path / ".env", text)
    dotenv.chmod(0o644)
    settings_for(tmp_path)
    err = capsys.readouterr().err
    assert ("accessible to other users" in err) is warns, err
