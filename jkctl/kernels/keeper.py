"""The daemon's side of a pod's output keeper: numbered iopub, and resuming after a drop.

A kernel pod whose image has pyzmq runs an output keeper
(``jkctl/kube/output_keeper.py``) on the kernel's iopub port. It prefixes each
kernel message with ``jkctl-seq:<keeper-id>:<n>``, keeps it, and sends to a
connection only once it subscribed to a *resume topic*: ``jkctl-resume:live``
(from now on) or ``jkctl-resume:<keeper-id>:<n>`` (replay after n, then go on).
Having caught up, it sends a *sync*, ``[jkctl-seq:<keeper-id>:<n>, <topic>]``.

:class:`Numbering` is what the relay knows of that: the last number seen
(duplicates, from a replay, are dropped), numbers that never came (a gap: the
keeper's ring overflowed), and the topic to resume with. The topic always
names the last number seen once one is known, so a connection that comes back
before the daemon noticed it went (ZeroMQ reconnects by itself) replays from
there rather than going on from "now".

A kernel without a keeper sends no numbers: nothing here applies, and a drop
loses what was published meanwhile, as it always did.
"""

from __future__ import annotations

SEQ = b"jkctl-seq:"
RESUME = b"jkctl-resume:"
LIVE = RESUME + b"live"


class Numbering:
    """One connection's view of a keeper's numbers (a new one per socket set)."""

    __slots__ = ("keeper", "last", "lost", "topic")

    def __init__(self) -> None:
        self.keeper: bytes | None = None
        self.last = 0
        #: Messages known lost (numbers that never came), over this connection's life.
        self.lost = 0
        #: The resume topic subscribed to now.
        self.topic = LIVE

    def message(self, tag: bytes) -> bool:
        """A kernel message numbered ``tag``: whether it is new (else a duplicate)."""
        keeper, _, number = tag[len(SEQ) :].rpartition(b":")
        n = int(number)
        if keeper != self.keeper:
            # A keeper we did not know (a stale connection's, or a new pod's): start over.
            self.keeper, self.last = keeper, n
            return True
        if n <= self.last:
            return False
        if n > self.last + 1:
            self.lost += n - self.last - 1
        self.last = n
        return True

    def sync(self, tag: bytes, topic: bytes) -> bool:
        """A sync: the keeper sent everything up to its number, answering ``topic``.

        Returns whether it answers the topic subscribed to now (one answering an
        earlier topic says nothing about this one)."""
        if topic != self.topic:
            return False
        keeper, _, number = tag[len(SEQ) :].rpartition(b":")
        n = int(number)
        resumed = topic != LIVE
        if keeper != self.keeper:
            if resumed and self.keeper is not None:
                self.lost += 1  # the keeper we resume from is gone: how much is unknown
            self.keeper, self.last = keeper, n
        elif n > self.last:
            if resumed:
                self.lost += n - self.last  # sent before the sync, and never came
            self.last = n
        return True

    def resume_topic(self) -> bytes:
        """The topic that resumes after the last number seen (live if none is known)."""
        if self.keeper is None:
            return LIVE
        return b"%s%s:%d" % (RESUME, self.keeper, self.last)
