"""The interactive chat: the loop, the prompt-toolkit objects, the slash commands.

The rooms: `start.py` (`run_repl`: which loop, on which terminal), `loop.py` (`Repl`: prompt, send,
stream, the prompt hooks), `fallbacks.py` (no terminal; `TERM=dumb`), `prompt.py` (the
PromptSession, key bindings, completion, the input-history file, /dev/tty), `toolbar.py`,
`commands.py` (the slash commands), `conversations.py` (/history, /resume, /export), `attach.py`
(/attach, /detach, /role), `inflight.py` (the user turn committed while its request is in flight),
`spend.py` (/usage), `resume.py` (what `-c`/`-r`/`/resume` print), `clipboard.py` (/copy).
Start-up tuning is in chatcli/warmup.py.

Nothing is imported here: `chatcli.repl.commands` and friends are imported by the one-shot
compare and the tools without pulling in prompt-toolkit.

Wiring (for `cli/chat.py`)::

    from chatcli.repl.start import Chat, run_repl

    code = run_repl(Chat(
        session=start,                 # () -> chatcli.session.Session, with its provider, model,
                                       # system, limits, trimmer and recorder; called once the
                                       # first prompt is drawn (or a built Session: used as is)
        label="openai:gpt-4o",         # what the toolbar shows until then
        settings=settings,             # chatcli.settings.Settings (aliases, models, prices, windows)
        open_view=lambda s: ...,       # a NEW ReplyView for each reply (see `Chat` for the rest:
                                       # model resolution, the store, piped text, attachments)
    ))
    raise SystemExit(code)

Returns the exit code: 0 when the user leaves (/exit, Ctrl-D, Ctrl-C twice on an empty line);
2 when there is no terminal to talk to and nothing was piped in.

Behaviour (docs/architecture.md, "The REPL"):

* The `PromptSession` is built inside `run_repl`, never at import, with injectable input/output
  (tests pass `create_pipe_input()` and `DummyOutput()`).
* Enter sends; Esc-Enter and Ctrl-J insert a newline; `/multiline` swaps the two (a slash
  command still runs on Enter). A bracketed
  paste arrives as ONE insert (prompt-toolkit's BracketedPaste key), so newlines inside a paste
  never submit. Ctrl-X Ctrl-E edits the message in $EDITOR, Ctrl-R searches the input history,
  suggestions come from history, Tab completes slash commands, model specs and /resume ids.
* Replies stream through the view BETWEEN prompts, never while a prompt is active
  ("Prompt and live output"): the prompt has returned and restored the terminal before a view opens.
* Ctrl-C while a reply streams is a KeyboardInterrupt in the main thread (the prompt is not
  running, so the terminal is in cooked mode with ISIG); `run_turn` closes the stream, the
  session records the partial reply as `interrupted`, the view warns and we are back at the
  prompt. Ctrl-C during a retry countdown interrupts the session's sleep the same way.
* Ctrl-C at the prompt clears the line. On an empty line the first Ctrl-C prints a hint and a
  second one exits (0); Ctrl-D on an empty line exits (0).
* Piped-then-interactive: when stdin is not a TTY the CLI has already read it (the first
  message); the prompt then reads from `/dev/tty`, like `sgpt` does, so `cat notes.md | chatcli`
  continues on the terminal. The prompt is drawn on stdout, or on stderr when stdout is
  redirected, so `chatcli > log` keeps replies alone on stdout.
* Start-up: nothing slow happens before the first prompt is drawn, and the prompt needs only the
  settings and the model's label. Right after it is drawn (the application's first
  `after_render`), in the main thread and before any key is read, the REPL builds its state
  (`Repl.boot`: the session and its provider, which loads the chat's own modules); then a
  daemon thread calls `provider.warm()` (the SDK import) and imports the renderer, hidden behind
  the user's typing ("Start-up time"); the first send joins it. A new conversation's history
  store (`open_store`) is opened then too, in the main thread, and makes its first commit; and
  Enter's key bindings are looked up once (`_warm_enter`), so the first message does not do it.
  Anything these print (a store warning, a provider's plain-http warning) is shown above the
  prompt. A piped first message builds the state before it is sent, with no prompt yet.
* The input history file is private (dir 0700, file 0600) and never receives a line that looks
  like it holds a key (`chatcli.redact`): people paste keys into the wrong window.
"""
