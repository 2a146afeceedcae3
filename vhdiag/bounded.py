"""A client-side deadline on every wait for a monitored server.

``statement_timeout`` is enforced by the server, so it bounds nothing when the server cannot
run: a postgres stopped with SIGSTOP, a hung VM, a host swapping to death. vhdiag would then
wait on the socket for as long as the server stays frozen. The usual client-side guards do not
help there either:

- TCP keepalives and ``tcp_user_timeout`` never fire while the server's *kernel* is alive: it
  still ACKs every packet (and still accepts new connections on the listen socket). They are
  set all the same (``TCP_OPTIONS``): they do end the wait when the host or the network dies.
- A cancel request is a new connection to the postmaster, which is frozen too; libpq's
  blocking ``PQcancel`` would hang, and only ``cancel_safe(timeout=...)`` (libpq 17+) is bounded.
- A Unix-domain socket has no TCP options at all.

So every wait has a deadline of its own: psycopg waits for the server in ``Connection.wait()``
(every execute, commit, rollback and the session setup go through it), and
``BoundedConnection.wait`` passes it ``statement_timeout + GRACE_S`` as its timeout. When a
server that enforces its own statement_timeout has not answered by then, it is not running the
statement: vhdiag sends a bounded cancel (for a server that is only overloaded), closes the
connection (its backend ends when it runs again), and raises ``NoAnswerError``: one line, not a
driver error, so a snapshot stops there and writes nothing. The connection then stays given up:
later waits on it fail at once, and its rollback is a no-op (the server rolls back a transaction
whose connection is gone).

Connecting itself is bounded by libpq's ``connect_timeout``, which psycopg enforces on the
client side in the same way.
"""
from __future__ import annotations

import contextlib
import math

import psycopg

from .errors import NoAnswerError

# After statement_timeout, the server's own error is on its way within milliseconds; the grace
# covers the network and the last rows of a result, not a server that runs slowly.
GRACE_S = 2.0
# A cancel request to a frozen postmaster waits this long at most (libpq 17+ only).
CANCEL_S = 1.0
# psycopg's own polling interval, at which it also lets Ctrl-C through.
_INTERVAL = getattr(psycopg.connection, "_WAIT_INTERVAL", 0.1)


def bound_s(statement_timeout_ms: int) -> float:
    """How long vhdiag waits for any one answer of a server."""
    return statement_timeout_ms / 1000 + GRACE_S


def tcp_options(statement_timeout_ms: int) -> dict[str, int]:
    """libpq keepalives and TCP_USER_TIMEOUT that end a wait on a dead host or network about when
    the deadline does (libpq ignores them on Unix-domain sockets)."""
    idle = math.ceil(bound_s(statement_timeout_ms))
    return {"keepalives": 1, "keepalives_idle": idle, "keepalives_interval": 1, "keepalives_count": 3,
            "tcp_user_timeout": (idle + 3) * 1000}


def no_answer_message(where: str, statement_timeout_ms: int) -> str:
    return (f"{where} did not answer within {bound_s(statement_timeout_ms):g} s (statement_timeout "
            f"{statement_timeout_ms} ms + grace): the server may be frozen or overloaded; check that its "
            "postgres processes are running (not stopped, swapping or starved) and that the host answers, "
            "then try again")


class BoundedConnection(psycopg.Connection):
    """A psycopg connection whose every wait for the server ends at a deadline.

    Unbounded (plain psycopg) until ``bound()`` is called, right after connecting."""

    _deadline_s: float | None = None
    _no_answer: str | None = None   # the message, once given up on

    def bound(self, statement_timeout_ms: int, where: str) -> None:
        """Wait at most statement_timeout + grace for every answer; ``where`` is host:port/db."""
        self._deadline_s = bound_s(statement_timeout_ms)
        self._message = no_answer_message(where, statement_timeout_ms)

    def wait(self, gen, interval: float = _INTERVAL, timeout: float | None = None):
        if self._no_answer is not None:
            gen.close()
            raise NoAnswerError(self._no_answer)
        if timeout is not None or self._deadline_s is None:  # a caller's own bound (cancel, notifies)
            return super().wait(gen, interval, timeout)
        try:
            return super().wait(gen, interval, self._deadline_s)
        except psycopg.errors._WaitTimeout:  # only our deadline: callers with their own returned above
            self._give_up()
            raise NoAnswerError(self._no_answer) from None

    def rollback(self) -> None:
        if self._no_answer is None:
            super().rollback()

    def _give_up(self) -> None:
        self._no_answer = self._message
        if psycopg.capabilities.has_cancel_safe():
            with contextlib.suppress(Exception):  # CancellationTimeout on a frozen postmaster
                self.cancel_safe(timeout=CANCEL_S)
        # What psycopg itself does with a query that a cancel did not end (psycopg #1371).
        self.pgconn.finish()
