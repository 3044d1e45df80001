"""A run's output on its way out (a stream, a job log): whole lines, each masked before it leaves, in order.

What is secret in a command's output is often known only from the output itself: the value of a variable
whose name says it is a password, a run's ``conf`` printed as JSON over several lines. So:

- a **data command** (``hold=True``: variables, connections, pools, states — short commands whose output
  is a document) has its lines held until it has ended; :meth:`MaskedOutput.finish` then lets the caller
  teach the masker from the whole output, and only then masks and releases the lines. No line can leave
  before the masker has seen the secret it holds.
- a **long command** (task runs, backfills, daemons: their lines must come live) has each line released
  as soon as it is complete, masked with what is known by then — the request's secrets, what earlier lines
  revealed, and what the line itself shows (``"password": ...``, a URI's password).

Lines longer than :data:`MAX_MASKED_LINE_BYTES` are cut, but never inside a known secret
(:meth:`~gateway.masking.Masker.masked_prefix`); lines are then shown in pieces of at most
:data:`MAX_LINE_CHARS`, cut after masking.
"""

from __future__ import annotations

from collections.abc import Callable

from .masking import Masker
from .runner import Chunk, Stream

#: Longest line masked as a whole; a longer one is masked in pieces whose cuts avoid known secrets.
MAX_MASKED_LINE_BYTES = 1 << 20
#: Longest line in a stream event or a job log event (a longer one is shown in pieces).
MAX_LINE_CHARS = 32 * 1024

Line = tuple[Stream, str]


class MaskedOutput:
    """Chunks in, masked lines out. ``hold``: release nothing until :meth:`finish` (a data command);
    ``max_held_bytes``: what is held past it is dropped (``truncated``), as the buffered answer drops it."""

    def __init__(self, masker: Masker, hold: bool = False, max_held_bytes: int = 10 << 20) -> None:
        self.masker = masker
        self.hold = hold
        self.truncated = False
        self._room = max_held_bytes
        self._pending: dict[Stream, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        #: Raw text after the last cut of an over-long line, not released yet.
        self._carry: dict[Stream, str] = {"stdout": "", "stderr": ""}
        self._held: list[tuple[Stream, str, bool]] = []

    def feed(self, chunk: Chunk) -> list[Line]:
        """The lines ``chunk`` completes that may leave now (none while holding)."""
        buffer = self._pending[chunk.stream]
        buffer += chunk.data
        out: list[Line] = []
        while True:
            newline = buffer.find(b"\n")
            if newline == -1 and len(buffer) < MAX_MASKED_LINE_BYTES:
                return out
            whole = newline != -1 and newline < MAX_MASKED_LINE_BYTES
            cut = newline + 1 if whole else _utf8_boundary(buffer, MAX_MASKED_LINE_BYTES)
            text = bytes(buffer[:cut]).decode("utf-8", errors="replace").rstrip("\n")
            del buffer[:cut]
            out += self._piece(chunk.stream, text, whole)

    def finish(self, learn: Callable[[str], None] | None = None) -> list[Line]:
        """Every line not released yet. Holding: the held lines first teach the masker (each line, then the
        whole stdout through ``learn``), then leave masked."""
        out: list[Line] = []
        for stream, buffer in self._pending.items():
            if buffer or self._carry[stream]:
                out += self._piece(stream, bytes(buffer).decode("utf-8", errors="replace"), True)
                buffer.clear()
        if not self.hold:
            return out
        lines = _joined(self._held)
        self._held = []
        for _, text in lines:
            self.masker.learn_line(text)
        if learn is not None:
            learn("\n".join(text for stream, text in lines if stream == "stdout"))
        return [piece for stream, text in lines for piece in self._shown(stream, self.masker.text(text))]

    def _piece(self, stream: Stream, text: str, whole: bool) -> list[Line]:
        if self.hold:
            size = len(text.encode("utf-8", errors="replace")) + 1
            if size > self._room:
                self.truncated = True
                return []
            self._room -= size
            self._held.append((stream, text, whole))
            return []
        text = self._carry[stream] + text
        self._carry[stream] = ""
        if whole:
            return self._shown(stream, self.masker.line(text))
        self.masker.learn_line(text)
        masked, self._carry[stream] = self.masker.masked_prefix(text, keep_chars=MAX_LINE_CHARS)
        return self._shown(stream, masked)

    @staticmethod
    def _shown(stream: Stream, text: str) -> list[Line]:
        if len(text) <= MAX_LINE_CHARS:
            return [(stream, text)]
        return [(stream, text[i : i + MAX_LINE_CHARS]) for i in range(0, len(text), MAX_LINE_CHARS)]


def _joined(held: list[tuple[Stream, str, bool]]) -> list[Line]:
    """Held pieces as whole lines again (the pieces of an over-long line, per stream, in order)."""
    lines: list[Line] = []
    open_piece: dict[Stream, int] = {}
    for stream, text, whole in held:
        if stream in open_piece:
            index = open_piece.pop(stream)
            lines[index] = (stream, lines[index][1] + text)
        else:
            index = len(lines)
            lines.append((stream, text))
        if not whole:
            open_piece[stream] = index
    return lines


def _utf8_boundary(buffer: bytearray, limit: int) -> int:
    """The largest cut ≤ ``limit`` that does not split a UTF-8 character."""
    if limit >= len(buffer):
        return len(buffer)
    cut = limit
    while cut > limit - 4 and cut > 0 and (buffer[cut] & 0xC0) == 0x80:
        cut -= 1
    return cut if cut > limit - 4 else limit
