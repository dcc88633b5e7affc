"""kubesim's in-memory object store: Kubernetes storage semantics without etcd.

What it keeps faithful, because clients depend on it:

- one cluster-wide, monotonically increasing `resourceVersion`, stamped on
  every write and on every list;
- optimistic concurrency: a replace carrying a stale `resourceVersion` is a
  409 Conflict;
- watches that start from a resourceVersion and replay what happened since,
  from a bounded history; older than the history is 410 Gone (the real
  server sends it as an ERROR event, which the API layer does);
- a watch with a selector sees ADDED when an object starts matching and
  DELETED when it stops, as the real watch cache does;
- `generateName`, `uid`, `creationTimestamp`, `generation`.

It is confined to one asyncio event loop (the API server's and the
kubelet's); threads hand work to that loop. It does no authorization,
validation or admission: those belong to the API layer, which calls in here
once a request is allowed.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from tests.kubesim import resources
from tests.kubesim.resources import ResourceType
from tests.kubesim.selectors import Matcher, field_matcher, label_matcher
from tests.kubesim.status import ApiError, already_exists, conflict, gone, not_found

Obj = dict[str, Any]
Key = tuple[str, str, str, str]  # (group, plural, namespace or "", name)

_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"  # the real server's alphabet


def now_rfc3339() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _key(rtype: ResourceType, namespace: str | None, name: str) -> Key:
    scope = (namespace or "") if rtype.namespaced else ""
    return (rtype.group, rtype.plural, scope, name)


@dataclass(frozen=True)
class WatchEvent:
    type: str  # ADDED, MODIFIED, DELETED
    object: Obj
    resource_version: int

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "object": self.object}


@dataclass(frozen=True)
class _Change:
    resource_version: int
    rtype: ResourceType
    namespace: str
    type: str
    before: Obj | None
    after: Obj | None


class Watch:
    """One watcher's stream of events; iterate it, then close it (or use `async with`)."""

    def __init__(
        self,
        store: Store,
        rtype: ResourceType,
        namespace: str | None,
        matches: Matcher,
    ) -> None:
        self._store = store
        self.rtype = rtype
        self.namespace = namespace
        self._matches = matches
        self._queue: asyncio.Queue[WatchEvent | None] = asyncio.Queue()
        self.closed = False

    def _offer(self, change: _Change) -> None:
        if change.rtype != self.rtype:
            return
        if self.namespace is not None and change.namespace != self.namespace:
            return
        was = change.before is not None and self._matches(change.before)
        now = change.after is not None and self._matches(change.after)
        if change.type == "DELETED":
            event_type = "DELETED" if was else None
            obj = change.before
        elif was and now:
            event_type, obj = "MODIFIED", change.after
        elif now:
            event_type, obj = "ADDED", change.after
        elif was:
            # Stopped matching the selector: to this watcher the object is gone,
            # shown as it is now (with the new resourceVersion).
            event_type, obj = "DELETED", change.after
        else:
            event_type, obj = None, None
        if event_type is not None and obj is not None:
            self._queue.put_nowait(
                WatchEvent(event_type, copy.deepcopy(obj), change.resource_version)
            )

    def _push_initial(self, obj: Obj, resource_version: int) -> None:
        self._queue.put_nowait(WatchEvent("ADDED", copy.deepcopy(obj), resource_version))

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._store._watches.discard(self)
            self._queue.put_nowait(None)

    async def next(self) -> WatchEvent | None:
        """The next event, or None once the watch is closed."""
        if self.closed and self._queue.empty():
            return None
        event = await self._queue.get()
        if event is None:
            self.closed = True
        return event

    def __aiter__(self) -> AsyncIterator[WatchEvent]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[WatchEvent]:
        while (event := await self.next()) is not None:
            yield event

    async def __aenter__(self) -> Watch:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self.close()


class Store:
    def __init__(self, *, history_size: int = 5000) -> None:
        # Indexed by type, then (namespace, name): a list touches only its own type.
        self._objects: dict[tuple[str, str], dict[tuple[str, str], Obj]] = {}
        self._history: deque[_Change] = deque()
        self._history_size = history_size
        self._compacted_through = 0  # changes at or below this rv are no longer replayable
        self._watches: set[Watch] = set()
        self.resource_version = 1

    # -- reads ---------------------------------------------------------------

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self._lookup(_key(rtype, namespace, name))
        if obj is None:
            raise not_found(rtype, name)
        return copy.deepcopy(obj)

    def try_get(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj | None:
        obj = self._lookup(_key(rtype, namespace, name))
        return copy.deepcopy(obj) if obj is not None else None

    def scan(self, rtype: ResourceType, namespace: str | None = None) -> Iterator[Obj]:
        """The stored objects themselves, unsorted and uncopied: read them, never change them.

        For hot read-only paths (authorization, quota usage) that would
        otherwise copy every object on every request.
        """
        for (ns, _), obj in list(self._objects.get((rtype.group, rtype.plural), {}).items()):
            if namespace is None or ns == namespace:
                yield obj

    def list(
        self,
        rtype: ResourceType,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[Obj], int]:
        """Matching objects sorted by namespace and name, and the list's resourceVersion."""
        matches = _combined(label_selector, field_selector)
        of_type = self._objects.get((rtype.group, rtype.plural), {})
        items = [
            copy.deepcopy(obj)
            for (ns, _), obj in sorted(of_type.items())
            if (namespace is None or ns == namespace) and matches(obj)
        ]
        return items, self.resource_version

    # -- writes --------------------------------------------------------------

    def create(self, rtype: ResourceType, obj: Obj, *, namespace: str | None = None) -> Obj:
        obj = copy.deepcopy(obj)
        meta = obj.setdefault("metadata", {})
        if rtype.namespaced:
            namespace = namespace or meta.get("namespace") or "default"
            meta["namespace"] = namespace
            if self._lookup(_key(resources.NAMESPACES, None, namespace)) is None:
                raise not_found(resources.NAMESPACES, namespace)
        else:
            meta.pop("namespace", None)
            namespace = None
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = self._generate_name(rtype, namespace, meta["generateName"])
        name = meta["name"]
        key = _key(rtype, namespace, name)
        if self._lookup(key) is not None:
            raise already_exists(rtype, name)
        obj["apiVersion"] = rtype.api_version
        obj["kind"] = rtype.kind
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if "spec" in obj:
            meta["generation"] = 1
        meta.pop("deletionTimestamp", None)
        self._write(rtype, key, "ADDED", before=None, after=obj)
        return copy.deepcopy(obj)

    def replace(self, rtype: ResourceType, obj: Obj) -> Obj:
        """A PUT: the whole object, refused with 409 if its resourceVersion is stale."""
        meta = obj.get("metadata", {})
        namespace = meta.get("namespace") if rtype.namespaced else None
        key = _key(rtype, namespace, meta["name"])
        current = self._lookup(key)
        if current is None:
            raise not_found(rtype, meta["name"])
        sent_rv = meta.get("resourceVersion")
        if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
            raise conflict(rtype, meta["name"])
        new = copy.deepcopy(obj)
        new["apiVersion"], new["kind"] = rtype.api_version, rtype.kind
        new_meta = new.setdefault("metadata", {})
        for immutable in ("uid", "creationTimestamp", "namespace", "deletionTimestamp"):
            if immutable in current["metadata"]:
                new_meta[immutable] = current["metadata"][immutable]
        if "generation" in current["metadata"]:
            changed_spec = new.get("spec") != current.get("spec")
            new_meta["generation"] = current["metadata"]["generation"] + int(changed_spec)
        new_meta["resourceVersion"] = current["metadata"]["resourceVersion"]
        if new == current:
            return copy.deepcopy(current)
        self._write(rtype, key, "MODIFIED", before=current, after=new)
        return copy.deepcopy(new)

    def mutate(
        self,
        rtype: ResourceType,
        namespace: str | None,
        name: str,
        change: Callable[[Obj], None],
    ) -> Obj:
        """Read-modify-write for kubesim's own controllers: `change` edits a copy in place.

        Unlike `replace`, it may set or change `deletionTimestamp` and
        `deletionGracePeriodSeconds` (graceful deletion is done this way);
        uid, creationTimestamp and namespace stay. No event is written when
        `change` leaves the object as it was.
        """
        key = _key(rtype, namespace, name)
        current = self._lookup(key)
        if current is None:
            raise not_found(rtype, name)
        new = copy.deepcopy(current)
        change(new)
        if new == current:
            return copy.deepcopy(current)
        new["apiVersion"], new["kind"] = rtype.api_version, rtype.kind
        new_meta = new.setdefault("metadata", {})
        for immutable in ("uid", "creationTimestamp", "namespace", "name"):
            if immutable in current["metadata"]:
                new_meta[immutable] = current["metadata"][immutable]
        if "generation" in current["metadata"]:
            changed_spec = new.get("spec") != current.get("spec")
            new_meta["generation"] = current["metadata"]["generation"] + int(changed_spec)
        self._write(rtype, key, "MODIFIED", before=current, after=new)
        return copy.deepcopy(new)

    def delete(self, rtype: ResourceType, namespace: str | None, name: str) -> Obj:
        """Remove the object now; graceful deletion is the caller's business."""
        key = _key(rtype, namespace, name)
        current = self._lookup(key)
        if current is None:
            raise not_found(rtype, name)
        gone_obj = copy.deepcopy(current)
        self._write(rtype, key, "DELETED", before=current, after=None, last_state=gone_obj)
        return copy.deepcopy(gone_obj)

    # -- watches -------------------------------------------------------------

    def watch(
        self,
        rtype: ResourceType,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Watch:
        """Start a watch.

        Without a resourceVersion (or with "0") the watch opens with a synthetic
        ADDED for every matching object, then follows changes. With one, it
        replays every change after it, or raises 410 Gone if the history no
        longer reaches back that far.
        """
        watch = Watch(self, rtype, namespace, _combined(label_selector, field_selector))
        if resource_version in (None, "", "0"):
            items, _ = self.list(
                rtype, namespace, label_selector=label_selector, field_selector=field_selector
            )
            for obj in items:
                watch._push_initial(obj, int(obj["metadata"]["resourceVersion"]))
        else:
            since = _parse_rv(resource_version)
            if since < self._compacted_through:
                raise gone(since, self._compacted_through)
            for change in self._history:
                if change.resource_version > since:
                    watch._offer(change)
        self._watches.add(watch)
        return watch

    def close_all_watches(self) -> None:
        for watch in list(self._watches):
            watch.close()

    # -- internals -----------------------------------------------------------

    def _write(
        self,
        rtype: ResourceType,
        key: Key,
        event_type: str,
        *,
        before: Obj | None,
        after: Obj | None,
        last_state: Obj | None = None,
    ) -> None:
        self.resource_version += 1
        rv = self.resource_version
        of_type = self._objects.setdefault(key[:2], {})
        if after is not None:
            after["metadata"]["resourceVersion"] = str(rv)
            of_type[key[2:]] = after
        else:
            del of_type[key[2:]]
            if last_state is not None:
                last_state["metadata"]["resourceVersion"] = str(rv)
                before = last_state
        change = _Change(rv, rtype, key[2], event_type, before, after)
        self._history.append(change)
        while len(self._history) > self._history_size:
            self._compacted_through = self._history.popleft().resource_version
        for watch in list(self._watches):
            watch._offer(change)

    def _lookup(self, key: Key) -> Obj | None:
        return self._objects.get(key[:2], {}).get(key[2:])

    def generate_name(self, rtype: ResourceType, namespace: str | None, prefix: str) -> str:
        """A free `generateName` name now (the API server needs it before admission)."""
        return self._generate_name(rtype, namespace, prefix)

    def _generate_name(self, rtype: ResourceType, namespace: str | None, prefix: str) -> str:
        while True:
            suffix = "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))
            name = f"{prefix}{suffix}"
            if self._lookup(_key(rtype, namespace, name)) is None:
                return name


def _combined(label_selector: str | None, field_selector: str | None) -> Matcher:
    by_label, by_field = label_matcher(label_selector), field_matcher(field_selector)
    return lambda obj: by_label(obj) and by_field(obj)


def _parse_rv(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise ApiError(400, "BadRequest", f'invalid resource version "{value}"') from None
