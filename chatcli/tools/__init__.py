"""MCP tools: server config, API-safe names, the background runtime, results and grants.

Each module owns one thing and none imports `mcp` at import time: the SDK (and anyio, pydantic,
httpx2 behind it) is loaded by `runtime.ToolRuntime.start()` only, so `chatcli --version`, `ask`
without tools and the REPL's first prompt never pay for it.

    servers.py   ServerConfig, parse_servers()  -- the `[mcp.servers.NAME]` tables
    names.py     ToolNames                      -- MCP names <-> API-safe function names
    results.py   ToolOutcome, flatten(), cap()  -- a CallToolResult as text, capped for the model
    grants.py    ToolPolicy, SavedGrants        -- may this tool run without asking?
    runtime.py   ToolRuntime, PendingCall       -- the synchronous API: start, status, calls, close
    lifecycle.py ServerLifecycle, ServerStatus  -- one event-loop thread, one owner task per server
    serverlog.py open_log(), tail()             -- each server's log file; the SDK's loggers
    _stdio.py    the stdio transport (spawn, JSON lines, shutdown within the 3 s budget)
"""
