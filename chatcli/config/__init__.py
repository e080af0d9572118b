"""Settings from flags, `CHATCLI_*` variables, the config file, `.env` files and defaults.

The rooms, in the order a start-up meets them:

* `load.py`: where the files live, `.env` merging, and `load()` — flags > the role >
  `CHATCLI_*` > file > defaults, one key at a time;
* `file.py`: reading one TOML file, and errors that name its file, line and key;
* `schema.py`: the keys each table accepts, their value kinds, the built-in providers;
* `resolution.py`: `resolve()` — a `-m` spec or the default to a provider and model;
* `show.py`: the text of `config show`, `chatcli models` and `config init`.

Everything is re-exported here: callers write `from chatcli.config import resolve` or
`config.load(...)` and need not know the room. Nothing here prints or exits; `cli.py` does that.
"""

from chatcli.config.file import _closest, _describe, _File, locate, read_file
from chatcli.config.load import (
    APP,
    Loaded,
    Overrides,
    config_path,
    load,
    merged_environ,
    user_config_dir,
    user_data_dir,
)
from chatcli.config.resolution import (
    AUTO_ORDER,
    LOCAL_INSTALL_HINT,
    MAX_ALIAS_DEPTH,
    NO_PROVIDER_MESSAGE,
    Resolved,
    auto_default,
    bundled_model_available,
    has_credentials,
    local_available,
    resolve,
    unusable_reason,
)
from chatcli.config.schema import (
    _NAME,
    BASE_URL_ENV,
    BOOL,
    BUILTIN_PROVIDERS,
    COUNT,
    NONEMPTY,
    POS_INT,
    POS_SECONDS,
    PRICE,
    PROVIDER_KEYS,
    PTYPE,
    RENDER,
    SECONDS,
    STR,
    STR_LIST,
    TABLES,
    TEMPERATURE,
    TOP_KEYS,
    _Kind,
)
from chatcli.config.show import describe, describe_models, example_config, write_example

__all__ = [
    "APP", "AUTO_ORDER", "BASE_URL_ENV", "BOOL", "BUILTIN_PROVIDERS", "COUNT", "LOCAL_INSTALL_HINT",
    "MAX_ALIAS_DEPTH", "NONEMPTY", "NO_PROVIDER_MESSAGE", "POS_INT", "POS_SECONDS", "PRICE", "PROVIDER_KEYS",
    "PTYPE", "RENDER", "SECONDS", "STR", "STR_LIST", "TABLES", "TEMPERATURE", "TOP_KEYS", "_NAME", "Loaded",
    "Overrides", "Resolved", "_File", "_Kind", "_closest", "_describe", "auto_default",
    "bundled_model_available", "config_path", "describe", "describe_models", "example_config",
    "has_credentials", "load", "local_available", "locate", "merged_environ", "read_file", "resolve",
    "unusable_reason", "user_config_dir", "user_data_dir", "write_example",
]
