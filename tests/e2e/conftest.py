"""End-to-end suite: the installed `chatcli` against the loopback server (see tests/e2e/README.md).

The autouse isolation of tests/conftest.py applies here too; every run also gets its own HOME /
CHATCLI_HOME from `helpers.chat_env`, so runs played concurrently never share files.
"""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: end-to-end load tests (10 MB replies, 2,000 turns); run in CI too")
