"""Waiting on kubesim through the official client: a real watch (or a followed log), a deadline.

Tests that drive kubesim over HTTP wait for what the kubelet does the way a
Kubernetes client does: `wait_for` follows a watch from a resourceVersion
(or from the current state) until a condition holds on an event, and
`wait_for_log` follows `pods/log` until a text has shown up. The deadline
is the watch's own `timeoutSeconds`, so a condition that never comes ends
the stream and fails the test with the last thing seen; nothing polls.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from kubernetes import client, watch

DEADLINE = 30.0  # seconds: generous, since 2 cores are shared by the whole suite


def wait_for(
    list_call: Callable[..., Any],
    *args: Any,
    until: Callable[[str, Any], bool],
    timeout: float = DEADLINE,
    **kwargs: Any,
) -> tuple[str, Any]:
    """Follow `list_call(*args, watch=True, **kwargs)` until `until(type, object)` holds.

    Without `resource_version` the watch starts with the current state (an
    ADDED event per object), so a condition that already holds is seen at
    once. Returns the matching event's type and object.
    """
    events = watch.Watch().stream(
        list_call,
        *args,
        timeout_seconds=math.ceil(timeout),
        _request_timeout=(10, timeout + 10),
        **kwargs,
    )
    last: tuple[str, Any] | None = None
    try:
        for event in events:
            last = (event["type"], event["object"])
            if until(*last):
                return last
    finally:
        events.close()  # ends the HTTP stream now, not whenever the generator is collected
    raise AssertionError(f"not there within {timeout} s; the last event was {last}")


def wait_for_pod(
    core: client.CoreV1Api,
    namespace: str,
    name: str,
    until: Callable[[str, client.V1Pod], bool],
    **kwargs: Any,
) -> tuple[str, client.V1Pod]:
    """`wait_for` on one pod (a field selector on its name)."""
    return wait_for(
        core.list_namespaced_pod,
        namespace,
        field_selector=f"metadata.name={name}",
        until=until,
        **kwargs,
    )


def phase(*phases: str) -> Callable[[str, client.V1Pod], bool]:
    return lambda kind, pod: kind != "DELETED" and pod.status.phase in phases


def waiting(reason: str) -> Callable[[str, client.V1Pod], bool]:
    """The pod's first container is waiting with `reason`."""

    def check(kind: str, pod: client.V1Pod) -> bool:
        statuses = pod.status.container_statuses or []
        state = statuses[0].state.waiting if statuses else None
        return kind != "DELETED" and state is not None and state.reason == reason

    return check


def wait_for_event(
    core: client.CoreV1Api, namespace: str, involved: str, reason: str, **kwargs: Any
) -> client.CoreV1Event:
    """The first Event with `reason` about the object named `involved`."""
    _, event = wait_for(
        core.list_namespaced_event,
        namespace,
        until=lambda kind, e: (
            kind == "ADDED" and e.involved_object.name == involved and e.reason == reason
        ),
        **kwargs,
    )
    return event


def wait_for_log(
    core: client.CoreV1Api, namespace: str, name: str, text: str, *, timeout: float = DEADLINE
) -> str:
    """Follow the pod's log, once it runs, until `text` has shown up; returns what was read.

    (Before its container has started, pods/log is a 400, as on a real cluster.)
    """
    wait_for_pod(core, namespace, name, phase("Running", "Succeeded", "Failed"), timeout=timeout)
    lines = watch.Watch().stream(
        core.read_namespaced_pod_log, name, namespace, _request_timeout=(10, timeout)
    )
    seen: list[str] = []
    try:
        for line in lines:
            seen.append(line)
            if text in line:
                return "\n".join(seen)
    finally:
        lines.close()
    raise AssertionError(f"{text!r} is not in the log of {name}: {seen}")
