"""The relay: one kernel's ZeroMQ sockets shared by all of its websocket clients.

Kernel to clients: each message's signature is checked (Session.sign), its
small header is parsed, and it is routed: iopub to every client; shell,
control and stdin replies to the client whose request is the message's parent
(an ``input_request``'s parent is the ``execute_request``). Pending-request
entries are dropped when the reply arrives or the client leaves. Each message
is encoded at most once per wire protocol, lazily, and the same bytes go to
every client using that protocol (:mod:`jkctl.kernels.wire`). Nothing waits
for a client: frames go into each client's :class:`~jkctl.kernels.outbox.Outbox`.

Clients to kernel: the frame is parsed into JSON parts (v1: sliced as they
are; legacy: the JSON is parsed and its four parts packed), signed with the
kernel's key keeping the client's header, and sent.

The daemon itself talks to the kernel through :meth:`Relay.request` (kernel
info, interrupt, shutdown) over the same sockets.

The link: the relay knows whether all its channels reach the kernel
(``on_link(up)``, from ZeroMQ's monitor: a tunnel that dropped, a kernel
that restarts). A request whose reply was lost while the link was down
(the kernel answered into a dropped connection) is found with
:meth:`Relay.find_lost_requests` and answered for the kernel by
:meth:`Relay.answer_lost` with an error reply saying so, so that no client
waits for ever; :meth:`Relay.notice` tells clients what a drop may have
cost them. While a drop lasts, clients' shell requests are *held*
(:meth:`Relay.hold`) until :meth:`Relay.confirm_iopub` has seen iopub flow
again: a request sent as soon as the sockets reconnect would run before
the iopub subscription reaches the kernel, and its output would be lost.
Control and stdin are never held (an interrupt, or the ``input()`` a running
cell waits for, must get through).

A kernel pod's output keeper (:mod:`jkctl.kernels.keeper`) numbers iopub
messages: duplicates from its replays are dropped here, gaps counted
(:attr:`Relay.output_lost`), and at a drop the relay asks it to resume after
the last message seen, so that with a keeper a drop loses no output.

What this module does not do: decide the kernel's lifecycle (see
:mod:`jkctl.kernels.manager`) or touch websockets (the daemon does, with the
frames from :meth:`Client.outbox`).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from hmac import compare_digest
from typing import Any

import zmq
from jupyter_client.session import DELIM, Session

from jkctl.backends.base import ConnectionInfo
from jkctl.errors import KernelError
from jkctl.kernels import wire
from jkctl.kernels.keeper import LIVE, SEQ, Numbering
from jkctl.kernels.messages import Client, KernelMessage
from jkctl.kernels.outbox import Frame, Outbox, Shed
from jkctl.kernels.sockets import CLIENT_CHANNELS, KernelSockets

logger = logging.getLogger(__name__)

#: Parts smaller than this are copied out of ZeroMQ's frames; larger ones are viewed.
_COPY_BELOW = 4096
#: How long :meth:`Relay.confirm_iopub` waits for iopub before it probes again.
_IOPUB_PROBE = 0.5
#: How long it waits for an output keeper's sync before it probes as without one.
_KEEPER_SYNC = 5.0


Pending = Client | asyncio.Future[KernelMessage]
#: What the relay keeps of a client's request until its reply: channel, raw header.
Asked = tuple[str, bytes]


class Relay:
    def __init__(
        self,
        *,
        kernel_id: str,
        context: zmq.Context[zmq.Socket[bytes]],
        client_queue_limit: int,
        on_iopub: Callable[[KernelMessage], None],
        on_client_message: Callable[[str], None],
        on_link: Callable[[bool], None] | None = None,
    ) -> None:
        self.kernel_id = kernel_id
        self._context = context
        self._client_queue_limit = client_queue_limit
        self._on_iopub = on_iopub
        self._on_client_message = on_client_message
        self._on_link = on_link
        self._session_or_none: Session | None = None
        self._sockets: KernelSockets | None = None
        self._clients: set[Client] = set()
        self._pending: dict[str, Pending] = {}
        #: The clients' requests awaiting a reply: what a lost reply is rebuilt from.
        self._asked: dict[str, Asked] = {}
        #: Channels whose connection reaches the kernel now.
        self._linked: set[str] = set()
        self._link_up = False
        #: Clients' shell messages kept back while the link recovers (None: not holding).
        self._held: list[list[bytes] | list[wire.Buffer]] | None = None
        self._iopub_seen = asyncio.Event()
        self._numbering = Numbering()
        #: A sync answering the resume topic came (since the sockets opened, or hold()).
        self._synced = asyncio.Event()
        self._closed = False

    # -- connection -----------------------------------------------------------

    @property
    def _session(self) -> Session:
        """The kernel's signing session; exists once :meth:`open` was called."""
        if self._session_or_none is None:
            raise KernelError(
                f"The connection to kernel {self.kernel_id} is not open yet.",
                hint="Wait for the kernel to start.",
            )
        return self._session_or_none

    def open(self, connection: ConnectionInfo) -> None:
        """(Re)connect to the kernel; a restart may bring new endpoints or a new key."""
        self.close_sockets()
        self._session_or_none = Session(
            key=connection.key,
            signature_scheme=connection.signature_scheme,
            username="jkctl",
        )
        self._iopub_seen.clear()
        self._numbering = Numbering()
        self._synced.clear()
        self._linked.clear()
        self._link_up = False
        self._sockets = KernelSockets(
            context=self._context,
            connection=connection,
            identity=self._session.bsession,
            on_message=self._from_kernel,
            kernel_id=self.kernel_id,
            on_link=self._channel_link if self._on_link is not None else None,
        )
        self._sockets.open()

    def close_sockets(self) -> None:
        """Disconnect from the kernel; requests in flight will get no reply."""
        if self._sockets is not None:
            self._sockets.close()
            self._sockets = None
        for msg_id, waiter in list(self._pending.items()):
            if isinstance(waiter, asyncio.Future):
                if not waiter.done():
                    waiter.set_exception(
                        KernelError(f"The connection to kernel {self.kernel_id} was closed.")
                    )
            else:
                waiter.pending.discard(msg_id)
        self._pending.clear()
        self._asked.clear()
        # Held messages were in flight, as those in ZeroMQ's queues: gone with the sockets.
        self._held = None

    def close(self) -> None:
        """Disconnect, and let every client's writer finish what is queued and end."""
        self.close_sockets()
        self._closed = True
        for client in self._clients:
            client.outbox.close()
        self._clients.clear()

    @property
    def iopub_seen(self) -> bool:
        return self._iopub_seen.is_set()

    async def wait_iopub(self) -> None:
        """Until an iopub message arrived since the sockets were opened."""
        await self._iopub_seen.wait()

    # -- clients --------------------------------------------------------------

    @property
    def client_count(self) -> int:
        return len(self._clients)

    @property
    def pending_count(self) -> int:
        """Requests still waiting for their reply (for tests and diagnostics)."""
        return len(self._pending)

    def attach(self, protocol: wire.Protocol, *, session_id: str = "") -> Client:
        outbox = Outbox(
            limit=self._client_queue_limit,
            notice=lambda shed: self._shed_notice(shed, protocol),
            kernel_id=self.kernel_id,
        )
        client = Client(protocol=protocol, outbox=outbox, session_id=session_id)
        if self._closed:
            # The kernel went away while this client was connecting: end it at once.
            outbox.close()
        else:
            self._clients.add(client)
        return client

    def detach(self, client: Client) -> None:
        self._clients.discard(client)
        client.outbox.close()
        for msg_id in client.pending:
            self._pending.pop(msg_id, None)
            self._asked.pop(msg_id, None)
        client.pending.clear()

    def from_client(self, client: Client, data: bytes, *, binary: bool) -> None:
        """Relay one websocket frame to the kernel. Raises MalformedMessage or KernelError."""
        message = wire.decode_client_message(
            client.protocol, data, binary=binary, pack=self._session.pack
        )
        if message.channel not in CLIENT_CHANNELS:
            raise wire.MalformedMessage(f"no such channel: {message.channel!r}")
        # Only requests get replies: a comm_msg (widgets) or an input_reply has
        # none, and remembering them would grow the table for the kernel's life.
        if message.channel != "stdin" and message.msg_type.endswith("_request"):
            self._pending[message.msg_id] = client
            self._asked[message.msg_id] = (message.channel, bytes(message.parts[0]))
            client.pending.add(message.msg_id)
        if self._held is not None and message.channel == "shell":
            self._held.append(message.parts)
        else:
            self._send(message.channel, message.parts)
        self._on_client_message(message.msg_type)

    def broadcast_status(self, execution_state: str) -> None:
        """Tell every client the kernel's state as the daemon knows it (restarting, dead)."""
        if not self._clients:
            return
        msg = self._session.msg("status", {"execution_state": execution_state})
        parts = [
            self._session.pack(msg["header"]),
            b"{}",
            b"{}",
            self._session.pack(msg["content"]),
        ]
        self._fan_out(
            KernelMessage("iopub", parts, msg_id=msg["header"]["msg_id"], msg_type="status")
        )

    # -- the daemon's own requests -------------------------------------------

    async def request(
        self, channel: str, msg_type: str, content: dict[str, Any] | None = None
    ) -> KernelMessage:
        """Send a request as the daemon and wait for its reply (the caller sets the timeout)."""
        msg = self._session.msg(msg_type, content or {})
        msg_id = msg["header"]["msg_id"]
        reply: asyncio.Future[KernelMessage] = asyncio.get_running_loop().create_future()
        self._pending[msg_id] = reply
        try:
            self._send(
                channel,
                [
                    self._session.pack(msg["header"]),
                    b"{}",
                    b"{}",
                    self._session.pack(msg["content"]),
                ],
            )
            return await reply
        finally:
            self._pending.pop(msg_id, None)

    # -- the link to the kernel -------------------------------------------------

    @property
    def link_up(self) -> bool:
        """Whether every channel reaches the kernel now."""
        return self._link_up

    def _channel_link(self, channel: str, up: bool) -> None:
        if up:
            self._linked.add(channel)
        else:
            self._linked.discard(channel)
        now_up = len(self._linked) == len(CLIENT_CHANNELS) + 1  # and iopub
        if now_up != self._link_up:
            self._link_up = now_up
            if self._on_link is not None:
                self._on_link(now_up)

    @property
    def keeps_output(self) -> bool:
        """Whether an output keeper numbers this kernel's iopub (a drop then loses none)."""
        return self._numbering.keeper is not None

    @property
    def output_lost(self) -> int:
        """iopub messages known lost (gaps in a keeper's numbers) since the sockets opened."""
        return self._numbering.lost

    @property
    def keeper_synced(self) -> bool:
        """Whether the keeper answered the resume topic since :meth:`hold`."""
        return self._synced.is_set()

    def hold(self) -> None:
        """Keep clients' shell messages back until :meth:`release` (the link dropped)."""
        if self._held is None:
            self._held = []
        self._iopub_seen.clear()
        self._synced.clear()
        self._resume()

    def _resume(self) -> None:
        """Subscribe to the keeper's topic resuming after the last message seen."""
        numbering = self._numbering
        topic = numbering.resume_topic()
        if self._sockets is not None and topic != numbering.topic:
            self._sockets.resubscribe(numbering.topic, topic)
            numbering.topic = topic

    def release(self) -> None:
        """Send the held shell messages, in order, and stop holding."""
        held, self._held = self._held, None
        for parts in held or []:
            self._send("shell", parts)

    async def confirm_iopub(self) -> None:
        """Until an iopub message arrives (since :meth:`hold`): the subscription reached
        the kernel. A ``kernel_info_request`` on control makes the kernel publish its
        status even while a cell runs; it is sent again every half second, for one sent
        before the connection was whole may be lost.

        With an output keeper, until its sync: it has replayed what was missed."""
        if self.keeps_output:
            try:
                async with asyncio.timeout(_KEEPER_SYNC):
                    await self._synced.wait()
                return
            except TimeoutError:
                logger.warning("kernel %s: no sync from its output keeper", self.kernel_id)
        while not self._iopub_seen.is_set():
            probe = asyncio.ensure_future(self.request("control", "kernel_info_request"))
            try:
                async with asyncio.timeout(_IOPUB_PROBE):
                    await self._iopub_seen.wait()
            except TimeoutError:
                pass
            finally:
                probe.cancel()
                await asyncio.wait([probe])
            failed = None if probe.cancelled() else probe.exception()
            if isinstance(failed, KernelError):
                raise failed  # the sockets closed: the kernel is restarting or gone

    def find_lost_requests(self, channel: str = "shell") -> list[str]:
        """The clients' requests on ``channel`` still waiting for a reply, oldest first."""
        return [msg_id for msg_id, (on, _) in self._asked.items() if on == channel]

    def answer_lost(self, msg_ids: list[str], text: str) -> int:
        """Answer requests whose replies were lost, for the kernel: to each one's client, an
        error reply and the ``idle`` status a client waits for, with ``text`` on stderr.
        Requests answered meanwhile are skipped. Returns how many were answered."""
        answered = 0
        for msg_id in msg_ids:
            waiter = self._pending.get(msg_id)
            asked = self._asked.pop(msg_id, None)
            if not isinstance(waiter, Client) or asked is None:
                continue
            del self._pending[msg_id]
            waiter.pending.discard(msg_id)
            channel, header = asked
            try:
                msg_type = str(json.loads(header).get("msg_type", "execute_request"))
            except ValueError:
                msg_type = "execute_request"
            reply_type = msg_type.removesuffix("_request") + "_reply"
            for message in (
                self._message("iopub", "stream", {"name": "stderr", "text": text}, header),
                self._message("iopub", "status", {"execution_state": "idle"}, header),
                self._message(
                    channel,
                    reply_type,
                    {
                        "status": "error",
                        "ename": "ConnectionLost",
                        "evalue": text.strip(),
                        "traceback": [text.strip()],
                    },
                    header,
                ),
            ):
                waiter.deliver(message)
            answered += 1
        return answered

    def notice(self, text: str, *, parent: bytes = b"{}") -> None:
        """A stderr stream message from jkctl to every client, addressed to ``parent``."""
        if self._clients:
            self._fan_out(
                self._message("iopub", "stream", {"name": "stderr", "text": text}, parent)
            )

    def _message(
        self, channel: str, msg_type: str, content: dict[str, Any], parent: bytes
    ) -> KernelMessage:
        msg = self._session.msg(msg_type, content)
        parts = [self._session.pack(msg["header"]), parent, b"{}", self._session.pack(content)]
        return KernelMessage(channel, parts, msg_id=msg["header"]["msg_id"], msg_type=msg_type)

    # -- internals ------------------------------------------------------------

    def _send(self, channel: str, parts: list[bytes] | list[wire.Buffer]) -> None:
        if self._sockets is None:
            raise KernelError(
                f"The connection to kernel {self.kernel_id} is closed.",
                hint="The kernel is restarting or was shut down; try again in a moment.",
            )
        self._sockets.send(channel, [DELIM, self._session.sign(parts[:4]), *parts])

    def _from_kernel(self, channel: str, frames: list[zmq.Frame]) -> None:
        if channel == "iopub" and frames[0].bytes.startswith(SEQ):
            frames = self._numbered(frames)
            if not frames:
                return
        start = next(
            (i + 1 for i, f in enumerate(frames) if len(f) == len(DELIM) and f.bytes == DELIM),
            None,
        )
        if start is None:
            logger.warning(
                "kernel %s: dropped a %s message without delimiter", self.kernel_id, channel
            )
            return
        if len(frames) < start + 5:
            logger.warning("kernel %s: dropped a short %s message", self.kernel_id, channel)
            return
        # Header, parent and metadata are small and parsed: copy them. Content and
        # buffers go on as views of ZeroMQ's memory unless small.
        header_json: bytes = frames[start + 1].bytes
        parts: list[wire.Buffer] = [header_json, frames[start + 2].bytes, frames[start + 3].bytes]
        parts.extend(
            frame.buffer if len(frame) > _COPY_BELOW else frame.bytes
            for frame in frames[start + 4 :]
        )
        if self._session.auth is not None and not compare_digest(
            frames[start].bytes, self._session.sign(parts[:4])
        ):
            logger.warning(
                "kernel %s: dropped a %s message with a bad signature", self.kernel_id, channel
            )
            return
        try:
            header: wire.MessageHeader = json.loads(header_json)
            message = KernelMessage(
                channel, parts, msg_id=header["msg_id"], msg_type=header["msg_type"]
            )
        except (ValueError, KeyError, TypeError):
            logger.warning(
                "kernel %s: dropped a %s message with a bad header", self.kernel_id, channel
            )
            return
        if channel == "iopub":
            self._iopub_seen.set()
            self._on_iopub(message)
            self._fan_out(message)
            return
        try:
            parent_id = message.parent_header().get("msg_id", "")
        except ValueError:
            parent_id = ""
        waiter = (
            self._pending.get(parent_id)
            if channel == "stdin"
            else self._pending.pop(parent_id, None)
        )
        if waiter is None:
            logger.debug(
                "kernel %s: no one waits for %s %s", self.kernel_id, channel, message.msg_type
            )
        elif isinstance(waiter, Client):
            if channel != "stdin":
                waiter.pending.discard(parent_id)
                self._asked.pop(parent_id, None)
            waiter.deliver(message)
        elif not waiter.done():
            waiter.set_result(message)

    def _numbered(self, frames: list[zmq.Frame]) -> list[zmq.Frame]:
        """A keeper's message without its number; none for a duplicate or a sync."""
        tag = frames[0].bytes
        try:
            if len(frames) == 2:
                numbering = self._numbering
                if numbering.sync(tag, frames[1].bytes):
                    # Not iopub_seen: that the kernel's own messages get through the
                    # keeper (whose link to a starting kernel may not be up yet) is what
                    # a kernel's start waits for.
                    self._synced.set()
                    if numbering.topic == LIVE:
                        # From "now" to "after n" at once: a drop the daemon has not yet
                        # noticed must not come back as "now". Only once: each change
                        # makes the keeper replay what is in flight, and sync again.
                        self._resume()
                return []
            return frames[1:] if self._numbering.message(tag) else []
        except ValueError:
            logger.warning("kernel %s: dropped an iopub message with a bad number", self.kernel_id)
            return []

    def _fan_out(self, message: KernelMessage) -> None:
        for client in self._clients:
            client.deliver(message)

    def _shed_notice(self, shed: Shed, protocol: wire.Protocol) -> Frame:
        """The stderr stream message telling a slow client what it missed."""
        many = shed.messages != 1
        text = (
            f"[jkctl] {shed.messages} output message{'s' if many else ''} "
            f"({_human_bytes(shed.nbytes)}) {'were' if many else 'was'} not shown here "
            "because this client read more slowly than the kernel wrote; "
            "the kernel itself was not affected.\n"
        )
        msg = self._session.msg("stream", {"name": "stderr", "text": text})
        parts = [
            self._session.pack(msg["header"]),
            shed.parent,
            b"{}",
            self._session.pack(msg["content"]),
        ]
        notice = KernelMessage("iopub", parts, msg_id=msg["header"]["msg_id"], msg_type="stream")
        return notice.frame(protocol)


def _human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")
