"""The sender process: a child process that hands emails to the mail server.

The scheduler drafts emails and keeps the books; handing an email over is an SMTP
conversation of four round trips. In one process the two share one interpreter
lock, and every reply from the server waits for the drafting thread to let go of
it. In a process of its own, the conversation runs on its own core meanwhile
(bench/dispatch.py: about 1.4x the emails per second of a thread).

The scheduler starts one for a large batch (`python -m bot.delivery.sender`) and
talks to it over its stdin and stdout, in frames (a 4-byte length, then a pickle;
the two ends are the same program):

    scheduler -> sender   the transport (SmtpTransport: the password never goes on
                          a command line), then chunks of emails, then None to end
    sender -> scheduler   for each chunk, what became of each email (`Handed`)

Emails reach the sender only once they are marked `sending`, so a sender that dies
leaves them as the scheduler's own thread would: possibly handed over, never sent
twice. A sender whose scheduler dies reads the end of its stdin and exits; SIGTERM
or SIGINT (Ctrl-C reaches the whole process group) lets it finish the email in
flight and hand no more.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import struct
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Sequence

from bot.delivery.ports import DeliveryError, MailTransport, Outbound

_LENGTH = struct.Struct("!I")
HELLO = "ready"
CLOSE_TIMEOUT = 60.0  # seconds a sender may take to finish its chunk and say goodbye to the server


@dataclass(frozen=True)
class Handed:
    """What became of one email of a chunk."""

    handed: bool  # given to the server; then `error` says how that went
    error: DeliveryError | None = None


def hand_chunk(transport: MailTransport, emails: Sequence[Outbound | None], go_on: Callable[[], bool]) -> list[Handed]:
    """Hand each email (None: skip it) to the server in turn, until `go_on()` says stop."""
    handed = []
    for email in emails:
        if email is None or not go_on():
            handed.append(Handed(False))
            continue
        try:
            transport.send(email)
        except DeliveryError as error:
            handed.append(Handed(True, error))
        else:
            handed.append(Handed(True))
    return handed


class SenderGone(Exception):
    """The sender process ended before it said what became of the emails it had."""


class SenderProcess:
    """The scheduler's side: start a sender, give it chunks, read what became of them."""

    def __init__(self, transport: MailTransport) -> None:
        try:
            given = pickle.dumps(transport, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise SenderGone(f"{transport!r} cannot be given to a sender process: {exc}") from None
        package_root = str(Path(__file__).resolve().parents[2])
        path = os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot.delivery.sender"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=0,  # unbuffered: `ready()` asks the pipe itself whether an outcome is there
            env={**os.environ, "PYTHONPATH": path},
        )
        assert self.process.stdin is not None and self.process.stdout is not None
        self._to, self._from = self.process.stdin, self.process.stdout
        try:
            _write_frame(self._to, given)
        except BrokenPipeError:
            pass  # it did not start: said below
        # It says hello once it has the transport: a sender that cannot start (say,
        # it cannot import the transport) fails here, before any email is given to it.
        if _read(self._from) != HELLO:
            self.close()
            raise SenderGone(f"the sender process did not start (exit status {self.process.returncode})")

    def submit(self, emails: Sequence[Outbound | None] | None) -> None:
        """Give the sender a chunk of emails to hand over (None: no more)."""
        try:
            _write(self._to, emails)
        except (BrokenPipeError, ValueError):  # ValueError: our end is closed already
            raise SenderGone("the sender process has stopped") from None

    def ready(self) -> bool:
        """Whether the outcome of a chunk (or the sender's end) can be read without waiting."""
        return bool(select.select([self._from], [], [], 0)[0])

    def outcome(self) -> list[Handed]:
        """What became of the oldest chunk not yet read (waits for it)."""
        handed = _read(self._from)
        if handed is None:
            raise SenderGone(f"the sender process stopped (exit status {self.process.wait()})")
        return handed  # type: ignore[no-any-return]

    def close(self, *, now: bool = False) -> None:
        """End the sender: after the chunks it has, or (`now`) after the email in flight."""
        if now:
            self.process.send_signal(signal.SIGTERM)
        try:
            self.submit(None)
        except SenderGone:
            pass
        self._to.close()
        try:
            self.process.wait(CLOSE_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._from.close()


def _write(stream: BinaryIO, value: Any) -> None:
    _write_frame(stream, pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL))


def _write_frame(stream: BinaryIO, data: bytes) -> None:
    frame = memoryview(_LENGTH.pack(len(data)) + data)
    while frame:  # an unbuffered pipe may take part of it
        frame = frame[stream.write(frame) or 0 :]
    stream.flush()


def _read(stream: BinaryIO) -> Any:
    """The next frame's value; None at the end of the stream."""
    header = _read_exactly(stream, _LENGTH.size)
    if header is None:
        return None
    data = _read_exactly(stream, _LENGTH.unpack(header)[0])
    return None if data is None else pickle.loads(data)


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    parts, left = [], size
    while left:  # an unbuffered pipe gives what it has
        part = stream.read(left)
        if not part:
            return None
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def main() -> None:
    """The sender process: hand over chunk after chunk until told to end."""
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    # Frames go to the scheduler on the real stdout; anything printed goes to stderr.
    replies = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())
    requests = sys.stdin.buffer
    transport: MailTransport | None = _read(requests)
    if transport is None:
        return  # the scheduler went away before it said how to send
    try:
        _write(replies, HELLO)
        # Once stopping, every chunk still comes back, as not handed over: its emails
        # are planned again, not mistaken for ones that may have gone out.
        while (emails := _read(requests)) is not None:
            _write(replies, hand_chunk(transport, emails, lambda: not stopping))
    except BrokenPipeError:
        pass  # the scheduler is gone: nobody is left to tell
    finally:
        transport.close()


if __name__ == "__main__":
    # Run as the module's own name, so what it sends back unpickles as bot.delivery.sender.Handed.
    from bot.delivery import sender

    sender.main()
