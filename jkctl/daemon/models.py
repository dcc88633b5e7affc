"""The gateway API's JSON models, shaped exactly as Jupyter Server returns them.

- kernel: ``id``, ``name``, ``last_activity`` (UTC, always with microseconds
  and a ``Z``: GatewayClient parses it with ``%Y-%m-%dT%H:%M:%S.%fZ``),
  ``execution_state``, ``connections``, and ``reason`` when there is one.
- kernelspec: ``name``, ``spec`` (kernel.json as jupyter_client's
  ``KernelSpec.to_dict``), ``resources`` (resource name -> URL under
  ``/kernelspecs/NAME/``).
- session: ``id``, ``path``, ``name``, ``type``, ``kernel``, and the deprecated
  ``notebook`` object for notebooks.
- error: ``message`` and ``reason`` (what GatewayClient reads and shows the
  user as "Error from Gateway: [message] reason"), plus jkctl's own
  ``reference``, ``hint`` and ``context``.
"""

from __future__ import annotations

import datetime
from typing import Any, NotRequired, TypedDict

from jkctl.errors import JkctlError
from jkctl.kernels.kernel import Kernel
from jkctl.kernels.specs import KernelSpec


class KernelModel(TypedDict):
    id: str
    name: str
    last_activity: str
    execution_state: str
    connections: int
    reason: NotRequired[str]


class KernelspecModel(TypedDict):
    name: str
    spec: dict[str, Any]
    resources: dict[str, str]


class KernelspecsModel(TypedDict):
    default: str
    kernelspecs: dict[str, KernelspecModel]


class NotebookModel(TypedDict):
    path: str
    name: str | None


class SessionModel(TypedDict):
    id: str
    path: str
    name: str | None
    type: str
    kernel: KernelModel
    notebook: NotRequired[NotebookModel]


class ErrorModel(TypedDict):
    message: str
    reason: str
    reference: str
    hint: NotRequired[str]
    context: NotRequired[str]


def timestamp(seconds: float) -> str:
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def kernel_model(kernel: Kernel) -> KernelModel:
    model: KernelModel = {
        "id": kernel.id,
        "name": kernel.name,
        "last_activity": timestamp(kernel.last_activity),
        "execution_state": str(kernel.state),
        "connections": kernel.connections,
    }
    if kernel.reason:
        model["reason"] = kernel.reason
    return model


def kernelspec_model(spec: KernelSpec) -> KernelspecModel:
    return {
        "name": spec.name,
        "spec": spec.to_dict(),
        "resources": {
            resource: f"/kernelspecs/{spec.name}/{file_name}"
            for resource, file_name in spec.resource_files().items()
        },
    }


def error_model(error: JkctlError) -> ErrorModel:
    model: ErrorModel = {
        "message": error.message,
        "reason": error.hint or error.reference,
        "reference": error.reference,
    }
    if error.hint:
        model["hint"] = error.hint
    if error.context:
        model["context"] = error.context
    return model
