"""`/copy`: put text on the user's clipboard with OSC 52, the one escape sequence chatcli emits itself.

OSC 52 (`ESC ] 52 ; c ; <base64> BEL`) asks the *terminal* to set its clipboard, so it works over
SSH and inside containers where no clipboard tool exists. The payload is base64, so untrusted
model text can never smuggle control sequences through it. Terminals may refuse it silently
(tmux needs `set -g set-clipboard on`, some terminals cap the size or ask for permission), which
is why the message we print says "sent to the terminal", not "copied".

When no terminal is reachable (stdout and stderr redirected, no /dev/tty) we print a fallback
message that points at `/export` instead.
"""

from __future__ import annotations

import base64
from typing import IO

# Above this size several terminals drop the sequence (xterm's default limit is about 100 kB of
# base64); we still send it but say so.
_LARGE = 74_000


def osc52(text: str) -> str:
    """The OSC 52 sequence that sets the clipboard selection (`c`) to `text`."""
    payload = base64.b64encode(text.encode("utf-8")).decode("ascii")
    # No tmux DCS passthrough wrapper: tmux itself forwards OSC 52 when `set-clipboard` is on,
    # and blocks passthrough by default since 3.3.
    return f"\x1b]52;c;{payload}\x07"


def copy_to_clipboard(text: str, *streams: IO[str]) -> tuple[bool, str]:
    """Write the OSC 52 sequence to the first of `streams` that is a terminal.

    Returns (sent, message): the message is one line for stderr, also when nothing was sent.
    """
    if not text:
        return False, "nothing to copy yet"
    for stream in streams:
        try:
            is_tty = stream.isatty()
        except (ValueError, OSError):  # closed or detached stream
            continue
        if not is_tty:
            continue
        try:
            stream.write(osc52(text))
            stream.flush()
        except OSError:
            continue
        note = f"sent {len(text):,} characters to the terminal clipboard (OSC 52)"
        if len(text) > _LARGE:
            note += "; large copies are dropped by some terminals — /export writes a file instead"
        return True, note
    return False, "the clipboard needs a terminal (OSC 52) and none is attached; use /export FILE instead"
