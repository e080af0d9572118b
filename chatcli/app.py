"""The object graph: from Settings to the provider, the session, the store and the view.

`cli.py` parses flags and calls into here; the one-shot flow (`cli/ask.py`) and the REPL get an
`App` and ask it for collaborators, so neither knows how settings turn into objects. Everything
heavy (an SDK, rich, SQLite) is imported by the method that needs it, never at module level:
`chatcli models` or `config show` must not pay for an SDK.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from collections.abc import Callable

from chatcli import config as configmod
from chatcli.config import Loaded, Resolved
from chatcli.env import Environment
from chatcli.settings import ProviderConfig, Settings

if TYPE_CHECKING:
    from chatcli.history.store import Store, StoreRecorder
    from chatcli.providers.base import Provider
    from chatcli.render.base import ReplyView
    from chatcli.session import Session, Trimmer
    from chatcli.tools.host import McpHost
    from chatcli.tools.runtime import ToolRuntime
    from chatcli.turn import Turn

ViewMode = Literal["plain", "markdown"]


@dataclass
class Resumed:
    """What `--continue` / `--resume` brought back: the stored turns and their conversation id."""

    id: str
    turns: list[Turn]


@dataclass
class App:
    env: Environment
    loaded: Loaded
    #: `-m` as typed on the command line (None: not given). A resumed conversation keeps its own
    #: model unless the user asked for another one here.
    model_flag: str | None = None
    _store: Store | None = field(default=None, init=False, repr=False)
    _store_opened: bool = field(default=False, init=False, repr=False)
    _tools: ToolRuntime | None = field(default=None, init=False, repr=False)

    @property
    def settings(self) -> Settings:
        return self.loaded.settings

    # -- secrets ---------------------------------------------------------------------------------

    def secrets(self) -> tuple[str, ...]:
        """Every key and secret header value we hold, for redaction of any text we print."""
        values: list[str] = []
        for cfg in self.settings.providers.values():
            values.extend(cfg.secrets())
        return tuple(dict.fromkeys(values))

    # -- models and providers ----------------------------------------------------------------------

    def resolve(self, spec: str | None = None) -> Resolved:
        return configmod.resolve(self.settings, spec)

    def provider(self, cfg: ProviderConfig) -> Provider:
        from chatcli.providers import build_provider

        return build_provider(cfg)

    def context_window(self, resolved: Resolved) -> int | None:
        from chatcli.context import context_window_for

        return context_window_for(resolved.model, resolved.provider.name,
                                  overrides=self.settings.context_windows,
                                  configured=resolved.provider.context_window)

    def trimmer(self, resolved: Resolved) -> Trimmer:
        from chatcli.context import make_trimmer

        return make_trimmer(self.context_window(resolved), self.settings.max_tokens)

    # -- history -----------------------------------------------------------------------------------

    def store(self, warn: Callable[[str], None] | None = None) -> Store | None:
        """The history store for a chat, or None (after a warning, to `warn` or stderr) when it
        cannot be used.

        Opened once, lazily: a one-shot with `--no-save` and no `--resume` never touches SQLite.
        """
        if not self._store_opened:
            self._store_opened = True
            from chatcli.history.store import open_for_chat

            assert self.settings.data_dir is not None
            self._store = open_for_chat(self.settings.data_dir, warn=warn or self.env.warn)
        return self._store

    @property
    def store_is_open(self) -> bool:
        """`store()` was called already (e.g. to resume a conversation)."""
        return self._store_opened

    def history_store(self) -> Store:
        """The store for `chatcli history ...`: there, a store that cannot be opened is an error."""
        from chatcli.history.store import Store

        assert self.settings.data_dir is not None
        return Store.open(self.settings.data_dir, warn=self.env.warn)

    def load_conversation(self, *, resume: str | None, continue_: bool) -> Resumed | None:
        """`--resume ID` / `--continue`: the stored conversation, or None (`-c` with nothing saved)."""
        if resume is None and not continue_:
            return None
        from chatcli.history.commands import load_for_resume

        store = self.store()
        if store is None:
            from chatcli.errors import StoreError

            raise StoreError("cannot resume: the history database is not available")
        found = load_for_resume(store, resume)
        if found is None:
            self.env.warn("no saved conversation to continue; starting a new one")
            return None
        conversation, turns = found
        return Resumed(conversation.id, turns)

    def resolve_for(self, conversation: Resumed | None) -> Resolved:
        """The model to use: `-m` if given, else the resumed conversation's own, else the default."""
        if self.model_flag is None and conversation is not None:
            last = next((t for t in reversed(conversation.turns) if t.provider and t.model), None)
            if last is not None and last.provider is not None and last.provider in self.settings.providers:
                cfg = self.settings.providers[last.provider]
                if configmod.unusable_reason(self.settings, cfg) is None:
                    assert last.model is not None
                    return Resolved(cfg, last.model)
        return self.resolve(self.model_flag)

    def recorder(self, conversation: Resumed | None) -> StoreRecorder | None:
        if not self.settings.save:
            return None
        store = self.store()
        if store is None:
            return None
        return store.recorder(conversation.id if conversation else None)

    # -- tools (MCP) -------------------------------------------------------------------------------

    def tool_servers(self) -> list[str]:
        """The servers this run offers: `-T` names, else every enabled one; none with `--no-tools`."""
        s = self.settings
        if s.tools_off:
            return []
        if s.tool_servers is not None:
            from chatcli.errors import UsageError

            unknown = [n for n in s.tool_servers if n not in s.mcp_servers]
            if unknown:
                known = ", ".join(sorted(s.mcp_servers)) or "none configured"
                raise UsageError(f"-T/--tools: no MCP server named {unknown[0]!r} (servers: {known})")
            return list(s.tool_servers)
        return [name for name, cfg in s.mcp_servers.items() if cfg.enabled]

    def tool_runtime(self) -> ToolRuntime:
        """The MCP servers of this process (started lazily; `close_tools()` ends them)."""
        if self._tools is None:
            from chatcli.tools.runtime import ToolRuntime

            assert self.settings.data_dir is not None
            self._tools = ToolRuntime(self.settings.mcp_servers, log_dir=self.settings.data_dir / "mcp")
        return self._tools

    def tool_host(self, *, interactive: bool, chat: bool = False) -> McpHost | None:
        """The session's tool host, its servers started in the background; None when no tool is on
        (in the chat: when no server is configured, since `/tools on NAME` can turn one on).

        `interactive`: a person is at the terminal to answer the approval question; otherwise calls
        that are not allowed are declined and named on stderr."""
        servers = self.tool_servers()
        if not servers and not (chat and self.settings.mcp_servers):
            return None
        from chatcli.render.toolcalls import question
        from chatcli.tools.approval import Approver, NoTerminal, TerminalQuestion
        from chatcli.tools.grants import SavedGrants, ToolPolicy
        from chatcli.tools.host import McpHost

        runtime = self.tool_runtime()
        if servers:
            runtime.start(servers)
        s = self.settings
        assert s.data_dir is not None
        policy = ToolPolicy(s.mcp_servers, saved=SavedGrants(s.data_dir, warn=self.env.warn), flags=s.allow_tools)
        approver: Approver = TerminalQuestion(question) if interactive else NoTerminal(self.env.stderr)
        return McpHost(runtime, policy, approver, servers=servers, result_limit=s.tool_result_limit)

    def close_tools(self) -> None:
        if self._tools is not None:
            self._tools.close()
            self._tools = None

    def session(self, resolved: Resolved, provider: Provider, *, conversation: Resumed | None = None,
                recorder: StoreRecorder | None = None, tools: McpHost | None = None) -> Session:
        from chatcli.session import RetryPolicy, Session

        s = self.settings
        turns = list(conversation.turns) if conversation else []
        system = s.system
        if system is None and turns:
            system = next((t.system for t in reversed(turns) if t.system), None)
        cfg = resolved.provider
        return Session(
            provider,
            model=resolved.model,
            system=system,
            max_tokens=s.max_tokens,
            temperature=s.temperature,
            retry=RetryPolicy(max_retries=cfg.max_retries, cap=cfg.retry_cap),
            recorder=recorder,
            trimmer=self.trimmer(resolved),
            turns=turns,
            tools=tools,
            max_tool_rounds=s.max_tool_rounds,
        )

    # -- output ------------------------------------------------------------------------------------

    def view_mode(self) -> ViewMode:
        """markdown on a TTY, plain for pipes and TERM=dumb; `--plain`/`--markdown` force it."""
        mode = self.settings.render
        if mode != "auto":
            return mode
        if self.env.stdout_isatty and not self.env.dumb_terminal:
            return "markdown"
        return "plain"

    def tool_view(self, *, label: str, chat: bool = False) -> ReplyView:
        """The view of a reply that may run tools: on a terminal a panel per round (tool lines and the
        approval question between panels, never inside a live one); plain, one stream."""
        if self.view_mode() != "markdown":
            return self.view(label=label, chat=chat)
        from chatcli.render.rounds import RoundsView

        return RoundsView(lambda: self.view(label=label, chat=chat), self.env.stderr, color=not self.env.no_color)

    def view(self, *, label: str | None = None, mode: ViewMode | None = None, chat: bool = False) -> ReplyView:
        """A view for one reply; `chat`: shown in the interactive chat (its warnings may name chat
        commands), else in `chatcli ask` (they name what works from the shell)."""
        from chatcli.render import open_view

        return open_view(out=self.env.stdout, err=self.env.stderr, mode=mode or self.view_mode(),
                         label=label or "", show_reasoning=self.settings.show_reasoning,
                         no_color=self.env.no_color, where="chat" if chat else "ask",
                         dumb=self.env.dumb_terminal)
