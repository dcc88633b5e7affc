"""The REST verbs on stored resources: create, get, list, update, patch, delete, deletecollection.

Each verb runs the real server's pipeline in its order: decode (400),
default, namespace lifecycle and mutating admission, validation (422),
validating admission (403), then the store (404/409). Responses are what the
real server sends: 201 with the object on create; lists with
`metadata.resourceVersion` (and `continue` when `limit` cuts them) and items
without kind/apiVersion; `Status` Success for deletes of types that do not
return the object; Tables when kubectl asks for them. The `status`
subresource replaces only `.status`; the main resource keeps the stored
status. `dryRun=All` runs everything but the write.

Not here: watch (`watchstream.py`), reviews (`reviews.py`), the streaming
subresources (`streams.py`), managedFields and server-side apply.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.kubesim import admission, defaults, deletion, quota, resources, tables, validation
from tests.kubesim.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from tests.kubesim.requestinfo import RequestInfo
from tests.kubesim.resources import ResourceType
from tests.kubesim.status import ApiError, bad_request, invalid, unsupported_media_type
from tests.kubesim.store import Obj, Store
from tests.kubesim.wire import read_body, read_object, respond

_COMMON_FIELDS = {"metadata.name", "metadata.namespace"}
_FIELD_LABELS: dict[str, set[str]] = {
    "pods": {
        "spec.nodeName",
        "spec.restartPolicy",
        "spec.schedulerName",
        "spec.serviceAccountName",
        "spec.hostNetwork",
        "status.phase",
        "status.podIP",
        "status.podIPs",
        "status.nominatedNodeName",
    },
    "secrets": {"type"},
    "events": {
        "involvedObject.kind",
        "involvedObject.namespace",
        "involvedObject.name",
        "involvedObject.uid",
        "involvedObject.apiVersion",
        "involvedObject.resourceVersion",
        "involvedObject.fieldPath",
        "reason",
        "reportingComponent",
        "source",
        "type",
    },
    "nodes": {"spec.unschedulable"},
    "namespaces": {"status.phase"},
    "jobs": {"status.successful"},
}
# Deletes of these return the object; the others return a Status.
_RETURNS_DELETED_OBJECT = {"pods", "namespaces", "resourcequotas"}
_PATCH_TYPES = {
    "application/json-patch+json": json_patch,
    "application/merge-patch+json": merge_patch,
    "application/strategic-merge-patch+json": strategic_merge_patch,
}


@dataclass(frozen=True, kw_only=True)
class Call:
    """One resource request, after authentication, authorization and routing."""

    request: web.Request
    info: RequestInfo
    rtype: ResourceType
    namespace: str | None  # None: cluster-scoped, or a list across namespaces

    def query(self, name: str) -> str | None:
        return self.request.query.get(name)

    @property
    def dry_run(self) -> bool:
        return "All" in self.request.query.getall("dryRun", [])


def check_field_selector(rtype: ResourceType, selector: str | None) -> None:
    if not selector:
        return
    supported = _COMMON_FIELDS | _FIELD_LABELS.get(rtype.plural, set())
    for term in selector.split(","):
        label = re.split(r"!=|==|=", term, maxsplit=1)[0].strip()
        if label and label not in supported:
            raise bad_request(f"field label not supported: {label}")


def _list_item(obj: Obj) -> Obj:
    item = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    return item


def _encode_continue(resource_version: int, start: tuple[str, str]) -> str:
    token = {"v": "meta.k8s.io/v1", "rv": resource_version, "start": "/".join(start) + "\x00"}
    return base64.urlsafe_b64encode(json.dumps(token).encode()).decode()


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        namespace, _, name = data["start"].rstrip("\x00").partition("/")
        return int(data["rv"]), (namespace, name)
    except (ValueError, KeyError, TypeError):
        raise bad_request(f"continue key is not valid: {token}") from None


class Rest:
    def __init__(self, store: Store) -> None:
        self._store = store

    # -- reads -----------------------------------------------------------------

    def get(self, call: Call) -> web.Response:
        obj = self._store.get(call.rtype, call.namespace, call.info.name)
        if tables.wants_table(call.request.headers.get("Accept", "")):
            include = call.query("includeObject") or "Metadata"
            return respond(
                tables.to_table(call.rtype, [obj], obj["metadata"]["resourceVersion"], include)
            )
        return respond(obj)

    def list(self, call: Call) -> web.Response:
        field_selector = call.query("fieldSelector")
        check_field_selector(call.rtype, field_selector)
        items, resource_version = self._store.list(
            call.rtype,
            call.namespace,
            label_selector=call.query("labelSelector"),
            field_selector=field_selector,
        )
        metadata: dict[str, Any] = {}
        if token := call.query("continue"):
            resource_version, start = _decode_continue(token)
            items = [
                obj
                for obj in items
                if (obj["metadata"].get("namespace", ""), obj["metadata"]["name"]) > start
            ]
        limit = int(call.query("limit") or 0)
        if limit > 0 and len(items) > limit:
            last = items[limit - 1]["metadata"]
            metadata["continue"] = _encode_continue(
                resource_version, (last.get("namespace", ""), last["name"])
            )
            metadata["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        metadata = {"resourceVersion": str(resource_version), **metadata}
        if tables.wants_table(call.request.headers.get("Accept", "")):
            include = call.query("includeObject") or "Metadata"
            table = tables.to_table(call.rtype, items, str(resource_version), include)
            table["metadata"] = metadata
            return respond(table)
        return respond(
            {
                "kind": call.rtype.list_kind,
                "apiVersion": call.rtype.api_version,
                "metadata": metadata,
                "items": [_list_item(obj) for obj in items],
            }
        )

    # -- writes ----------------------------------------------------------------

    def _decode(self, call: Call, obj: Obj) -> Obj:
        rtype = call.rtype
        if obj.get("kind") not in (None, rtype.kind) or obj.get("apiVersion") not in (
            None,
            rtype.api_version,
        ):
            raise bad_request(
                f'{obj.get("kind")} in version "{obj.get("apiVersion")}" cannot be handled as a '
                f"{rtype.kind}: the object does not match the endpoint's kind {rtype.kind}"
            )
        meta = obj.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise bad_request(
                f'{rtype.kind} in version "{rtype.version}" cannot be handled as a '
                f"{rtype.kind}: metadata must be an object"
            )
        if rtype.namespaced:
            sent = meta.get("namespace")
            if sent and call.namespace and sent != call.namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on "
                    "the request"
                )
            meta["namespace"] = call.namespace or sent or "default"
        else:
            meta.pop("namespace", None)
        obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
        for optional in ("labels", "annotations", "finalizers", "ownerReferences"):
            if optional in meta and not meta[optional]:
                del meta[optional]  # Go's omitempty: an emptied map is not sent back
        validation.check_decodable(rtype, obj)
        defaults.apply(rtype, obj)
        return obj

    async def create(self, call: Call) -> web.Response:
        rtype = call.rtype
        obj = self._decode(call, await read_object(call.request))
        meta = obj["metadata"]
        for server_owned in (
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
        ):
            meta.pop(server_owned, None)
        namespace = meta.get("namespace") if rtype.namespaced else None
        admission.admit_create(self._store, rtype, obj, namespace)
        if rtype is resources.RESOURCEQUOTAS:
            obj["status"] = quota.quota_status(self._store, obj)
        if call.dry_run:
            return respond(obj, 201)
        return respond(self._store.create(rtype, obj, namespace=namespace), 201)

    def _check_name(self, call: Call, obj: Obj) -> None:
        sent = obj["metadata"].get("name")
        if sent != call.info.name:
            raise bad_request(
                f"the name of the object ({sent}) does not match the name on the URL "
                f"({call.info.name})"
            )

    def _write(self, call: Call, current: Obj, new: Obj) -> web.Response:
        """Shared tail of update and patch: subresource rules, validation, the store."""
        rtype = call.rtype
        new["metadata"].pop("deletionTimestamp", None)
        new["metadata"].pop("deletionGracePeriodSeconds", None)
        for kept in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            if kept in current["metadata"]:
                new["metadata"][kept] = current["metadata"][kept]
        if call.info.subresource == "status":
            status, sent_rv = new.get("status"), new["metadata"].get("resourceVersion")
            new = copy.deepcopy(current)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
            if sent_rv:  # a stale one is a 409, as for the main resource
                new["metadata"]["resourceVersion"] = sent_rv
        elif "status" in rtype.subresources:
            if "status" in current:
                new["status"] = copy.deepcopy(current["status"])
            else:
                new.pop("status", None)
        validation.validate(rtype, new)
        if rtype is resources.PODS and call.info.subresource != "status":
            validation.validate_pod_update(current, new)
        if call.dry_run:
            return respond(new)
        return respond(self._store.replace(rtype, new))

    async def update(self, call: Call) -> web.Response:
        body = await read_object(call.request)
        current = self._store.get(call.rtype, call.namespace, call.info.name)
        obj = self._decode(call, body)
        self._check_name(call, obj)
        if not obj["metadata"].get("resourceVersion"):
            obj["metadata"].pop("resourceVersion", None)
        return self._write(call, current, obj)

    async def patch(self, call: Call) -> web.Response:
        content_type = call.request.content_type
        apply = _PATCH_TYPES.get(content_type)
        if apply is None:
            raise unsupported_media_type(content_type)
        body = await read_body(call.request)
        current = self._store.get(call.rtype, call.namespace, call.info.name)
        try:
            patched = apply(copy.deepcopy(current), body)
        except PatchError as exc:
            if exc.unprocessable:
                raise ApiError(422, "Invalid", str(exc)) from None
            raise bad_request(str(exc)) from None
        if not isinstance(patched, dict):
            raise bad_request("the patch did not produce an object")
        obj = self._decode(call, patched)
        self._check_name(call, obj)
        return self._write(call, current, obj)

    def binding(self, call: Call, body: Obj) -> web.Response:
        """POST pods/NAME/binding: assign a pod to a node, as a scheduler does."""
        pod = self._store.get(resources.PODS, call.namespace, call.info.name)
        target = (body.get("target") or {}).get("name")
        if not target:
            raise invalid(
                resources.PODS,
                call.info.name,
                [("target.name", "FieldValueRequired", "Required value")],
            )
        assigned = (pod.get("spec") or {}).get("nodeName")
        if assigned:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on pods/binding "{call.info.name}": pod '
                f'{call.info.name} is already assigned to node "{assigned}"',
            )
        self._store.mutate(
            resources.PODS,
            call.namespace,
            call.info.name,
            lambda p: p.setdefault("spec", {}).__setitem__("nodeName", target),
        )
        return respond(
            {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "code": 201,
            },
            201,
        )

    # -- deletes ---------------------------------------------------------------

    async def _delete_options(self, call: Call) -> deletion.DeleteOptions:
        body = await read_body(call.request) or {}
        if not isinstance(body, dict):
            raise bad_request("DeleteOptions must be an object")
        grace = body.get("gracePeriodSeconds", call.query("gracePeriodSeconds"))
        preconditions = body.get("preconditions") or {}
        policy = body.get("propagationPolicy") or call.query("propagationPolicy")
        if policy not in (None, "Orphan", "Background", "Foreground"):
            raise invalid(
                resources.get("", "pods") if call.rtype is resources.PODS else call.rtype,
                call.info.name,
                [
                    (
                        "propagationPolicy",
                        "FieldValueNotSupported",
                        f'Unsupported value: "{policy}": supported values: '
                        '"Foreground", "Background", "Orphan", "nil"',
                    )
                ],
            )
        dry = "All" in (body.get("dryRun") or []) or call.dry_run
        try:
            grace_seconds = None if grace is None else int(grace)
        except ValueError:
            raise bad_request(f"invalid gracePeriodSeconds: {grace}") from None
        return deletion.DeleteOptions(
            grace_period_seconds=grace_seconds,
            propagation_policy=policy,
            uid=preconditions.get("uid"),
            resource_version=preconditions.get("resourceVersion"),
            dry_run=dry,
        )

    def _deleted_response(self, rtype: ResourceType, outcome: deletion.Outcome) -> Obj:
        if rtype.plural in _RETURNS_DELETED_OBJECT or not outcome.finished:
            return outcome.obj
        meta = outcome.obj["metadata"]
        details: dict[str, Any] = {
            "name": meta["name"],
            "kind": rtype.plural,
            "uid": meta.get("uid"),
        }
        if rtype.group:
            details["group"] = rtype.group
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }

    async def delete(self, call: Call) -> web.Response:
        options = await self._delete_options(call)
        outcome = deletion.delete(self._store, call.rtype, call.namespace, call.info.name, options)
        return respond(self._deleted_response(call.rtype, outcome))

    async def deletecollection(self, call: Call) -> web.Response:
        options = await self._delete_options(call)
        field_selector = call.query("fieldSelector")
        check_field_selector(call.rtype, field_selector)
        items, resource_version = self._store.list(
            call.rtype,
            call.namespace,
            label_selector=call.query("labelSelector"),
            field_selector=field_selector,
        )
        deleted = []
        for obj in items:
            meta = obj["metadata"]
            try:
                outcome = deletion.delete(
                    self._store, call.rtype, meta.get("namespace"), meta["name"], options
                )
            except ApiError as exc:
                if exc.code == 404:
                    continue  # gone meanwhile, as the real server tolerates
                raise
            deleted.append(_list_item(outcome.obj))
        return respond(
            {
                "kind": call.rtype.list_kind,
                "apiVersion": call.rtype.api_version,
                "metadata": {"resourceVersion": str(resource_version)},
                "items": deleted,
            }
        )
