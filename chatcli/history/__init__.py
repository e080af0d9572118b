"""Saved conversations: `store.py` (SQLite: conversations, turns, full-text search), `partcodec.py`
(a turn's parts as JSON, attachments' bytes by hash), `commands.py` (`chatcli history …`) and
`export.py` (the one markdown/JSON exporter, for `/export` and `history export`).

Nothing is imported here: `chatcli history list` should not pay for the exporter, nor a chat
that saves nothing for the store.
"""
