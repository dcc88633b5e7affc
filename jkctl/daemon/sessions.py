"""Jupyter sessions: a notebook (or console) path bound to a kernel.

Clients that use the daemon directly as a Jupyter server (VS Code,
``@jupyterlab/services``) create a session per open document. Sessions live
in memory, as Jupyter Server's do: a session whose kernel has gone (shut
down, died) disappears from listings. Behaviour follows Jupyter Server's
session handlers: creating a session for a path that has one returns it;
changing a session's kernel *name* starts a new kernel and shuts the old one
down; deleting a session shuts its kernel down.

What this module does not do: HTTP (``jkctl.daemon.api_sessions``).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from jkctl.daemon.models import SessionModel, kernel_model
from jkctl.errors import KernelNotFound, SessionNotFound, UsageError
from jkctl.kernels.manager import KernelManager


@dataclass(kw_only=True)
class Session:
    id: str
    path: str
    name: str | None
    type: str
    kernel_id: str


class SessionStore:
    def __init__(self, manager: KernelManager) -> None:
        self._manager = manager
        self._sessions: dict[str, Session] = {}

    def list(self) -> list[SessionModel]:
        return [
            model for session in list(self._sessions.values()) if (model := self._model(session))
        ]

    def get(self, session_id: str) -> SessionModel:
        session = self._sessions.get(session_id)
        model = self._model(session) if session else None
        if model is None:
            raise SessionNotFound(
                f"There is no session with id {session_id}.",
                hint="GET /api/sessions lists the current ones.",
            )
        return model

    async def create(
        self,
        *,
        path: str,
        type: str,
        name: str | None,
        kernel_name: str | None,
        kernel_id: str | None,
        env: Any = None,
    ) -> SessionModel:
        for session in list(self._sessions.values()):
            if session.path == path and (model := self._model(session)):
                return model
        kernel_id = await self._kernel_for(kernel_id=kernel_id, kernel_name=kernel_name, env=env)
        session = Session(
            id=str(uuid.uuid4()), path=path, name=name, type=type, kernel_id=kernel_id
        )
        self._sessions[session.id] = session
        return self.get(session.id)

    async def update(self, session_id: str, changes: dict[str, Any]) -> SessionModel:
        self.get(session_id)
        session = self._sessions[session_id]
        for key in ("path", "name", "type"):
            if key in changes:
                value = changes[key]
                if value is not None and not isinstance(value, str):
                    raise UsageError(f"The session's {key} must be a string.")
                setattr(session, key, value if key == "name" else (value or getattr(session, key)))
        kernel = changes.get("kernel")
        if isinstance(kernel, dict) and (kernel.get("id") or kernel.get("name")):
            old = session.kernel_id
            if kernel.get("id"):
                try:
                    self._manager.get(str(kernel["id"]))
                except KernelNotFound as exc:
                    raise UsageError(
                        f"No such kernel: {kernel['id']}.", hint="Start it first."
                    ) from exc
                session.kernel_id = str(kernel["id"])
            else:
                session.kernel_id = await self._kernel_for(
                    kernel_id=None, kernel_name=str(kernel["name"]), env=None
                )
            if session.kernel_id != old:
                await self._shutdown_quietly(old)
        return self.get(session_id)

    async def delete(self, session_id: str) -> None:
        session = self._sessions.pop(session_id, None)
        if session is None:
            raise SessionNotFound(
                f"There is no session with id {session_id}.",
                hint="GET /api/sessions lists the current ones.",
            )
        await self._shutdown_quietly(session.kernel_id)

    async def _kernel_for(self, *, kernel_id: str | None, kernel_name: str | None, env: Any) -> str:
        if kernel_id:
            return self._manager.get(kernel_id).id
        kernel = await self._manager.start_kernel(name=kernel_name, env=env)
        return kernel.id

    async def _shutdown_quietly(self, kernel_id: str) -> None:
        try:
            kernel = self._manager.get(kernel_id)
        except KernelNotFound:
            return
        await kernel.shutdown()

    def _model(self, session: Session) -> SessionModel | None:
        try:
            kernel = self._manager.get(session.kernel_id)
        except KernelNotFound:
            # The kernel was shut down or died: the session goes with it.
            self._sessions.pop(session.id, None)
            return None
        model: SessionModel = {
            "id": session.id,
            "path": session.path,
            "name": session.name,
            "type": session.type,
            "kernel": kernel_model(kernel),
        }
        if session.type == "notebook":
            model["notebook"] = {"path": session.path, "name": session.name}
        return model
