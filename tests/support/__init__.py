"""What tests share; no test module imports another.

* `runner.py`: `chatcli(*args, stdin=..., env=...)` runs the CLI in-process -> `Result`;
* `binary.py`: the installed `chatcli` as a subprocess (`run`, `cli_env`, key canaries);
* `sse_server.py`: the loopback HTTP server playing scripted OpenAI / Anthropic streams;
* `fakes.py`: a scripted provider and a terminal stand-in;
* `repl.py`: the chat loop on prompt-toolkit's pipe input (`Harness`, key constants);
* `provider_checks.py`: assertions both provider test modules make;
* `store_faults.py`: a SQLite connection that fails like a full disk;
* `store_schema1.py`: a history database as schema 1 wrote it;
* `media.py`: tiny real PNG/JPEG/GIF/WebP/PDF files;
* `mcp_scripted_server.py`: a scripted MCP server (the `mcp` SDK, stdio).
"""
