"""Discovery, version and OpenAPI documents, generated from the resource table.

What the clients ask for, and what kubesim answers:

- `/version`: a 1.35 server (the RBAC behaviour kubesim copies is 1.35's).
- `/api`, `/api/v1`, `/apis`, `/apis/GROUP`, `/apis/GROUP/VERSION`: the
  legacy discovery documents. kubectl 1.27+ first asks for aggregated
  discovery (`as=APIGroupDiscoveryList` in Accept); answered with plain
  `application/json`, it silently falls back to these, as it does with
  older servers.
- `/openapi/v3` and `/openapi/v3/<group-version>` (kubectl 1.29+), and
  `/openapi/v2` as gnostic protobuf (kubectl 1.27 and 1.28): `create -f`
  and `apply` read them to decide whether the server validates fields
  itself (`fieldValidation`); kubesim's documents declare that parameter
  on every PATCH, so kubectl leaves validation to the server. The schemas
  are stubs: `kubectl explain` is out of scope.
- `/healthz`, `/livez`, `/readyz`: "ok".
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tests.kubesim.resources import RESOURCE_TYPES, ResourceType

VERSION_INFO = {
    "major": "1",
    "minor": "35",
    "emulationMajor": "1",
    "emulationMinor": "35",
    "minCompatibilityMajor": "1",
    "minCompatibilityMinor": "34",
    "gitVersion": "v1.35.0+kubesim",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-12-17T00:00:00Z",
    "goVersion": "go1.25.5",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_CATEGORIES = {"pods": ["all"], "daemonsets": ["all"], "jobs": ["all"]}

# subresource -> (kind or None for the parent's kind, verbs, (group, version) if not the parent's)
_SUBRESOURCES: dict[str, tuple[str | None, list[str], tuple[str, str] | None]] = {
    "status": (None, ["get", "patch", "update"], None),
    "log": (None, ["get"], None),
    "portforward": ("PodPortForwardOptions", ["create", "get"], None),
    "exec": ("PodExecOptions", ["create", "get"], None),
    "binding": ("Binding", ["create"], None),
    "eviction": ("Eviction", ["create"], ("policy", "v1")),
    "token": ("TokenRequest", ["create"], ("authentication.k8s.io", "v1")),
    "finalize": (None, ["update"], None),
}


def _group_versions() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for rtype in RESOURCE_TYPES:
        versions = found.setdefault(rtype.group, [])
        if rtype.version not in versions:
            versions.append(rtype.version)
    return found


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def _group(name: str, versions: list[str]) -> dict[str, Any]:
    listed = [{"groupVersion": f"{name}/{v}", "version": v} for v in versions]
    return {"name": name, "versions": listed, "preferredVersion": listed[0]}


def api_group_list() -> dict[str, Any]:
    groups = [_group(g, v) for g, v in _group_versions().items() if g]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}


def api_group(name: str) -> dict[str, Any] | None:
    versions = _group_versions().get(name)
    if not name or versions is None:
        return None
    return {"kind": "APIGroup", "apiVersion": "v1", **_group(name, versions)}


def _subresource_names(rtype: ResourceType) -> list[str]:
    names = list(rtype.subresources)
    if rtype.plural == "namespaces" and "finalize" not in names:
        names.append("finalize")
    return names


def api_resource_list(group: str, version: str) -> dict[str, Any] | None:
    types = [rt for rt in RESOURCE_TYPES if (rt.group, rt.version) == (group, version)]
    if not types:
        return None
    entries: list[dict[str, Any]] = []
    for rtype in types:
        entry: dict[str, Any] = {
            "name": rtype.plural,
            "singularName": rtype.singular,
            "namespaced": rtype.namespaced,
            "kind": rtype.kind,
            "verbs": sorted(rtype.verbs),
        }
        if rtype.short_names:
            entry["shortNames"] = list(rtype.short_names)
        if rtype.plural in _CATEGORIES:
            entry["categories"] = _CATEGORIES[rtype.plural]
        entries.append(entry)
        for sub in _subresource_names(rtype):
            kind, verbs, other_gv = _SUBRESOURCES.get(sub, (None, ["get"], None))
            sub_entry: dict[str, Any] = {
                "name": f"{rtype.plural}/{sub}",
                "singularName": "",
                "namespaced": rtype.namespaced,
                "kind": kind or rtype.kind,
                "verbs": verbs,
            }
            if other_gv is not None:
                sub_entry["group"], sub_entry["version"] = other_gv
            entries.append(sub_entry)
    group_version = f"{group}/{version}" if group else version
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": entries,
    }


# -- OpenAPI v3 ---------------------------------------------------------------------


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def _operation(rtype: ResourceType, action: str, *, writes: bool) -> dict[str, Any]:
    parameters = []
    if writes:
        parameters = [
            {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
            for name in ("dryRun", "fieldManager", "fieldValidation")
        ]
    return {
        "operationId": f"{action}{rtype.kind}",
        "parameters": parameters,
        "responses": {"200": {"description": "OK"}},
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": {
            "group": rtype.group,
            "version": rtype.version,
            "kind": rtype.kind,
        },
    }


def openapi_v3_document(group: str, version: str) -> dict[str, Any] | None:
    types = [rt for rt in RESOURCE_TYPES if (rt.group, rt.version) == (group, version)]
    if not types:
        return None
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for rtype in types:
        namespace = "{namespace}" if rtype.namespaced else None
        collection = rtype.path(namespace)
        item = rtype.path(namespace, "{name}")
        can = set(rtype.verbs)
        coll_ops: dict[str, Any] = {}
        if "list" in can:
            coll_ops["get"] = _operation(rtype, "list", writes=False)
        if "create" in can:
            coll_ops["post"] = _operation(rtype, "post", writes=True)
        if "deletecollection" in can:
            coll_ops["delete"] = _operation(rtype, "deletecollection", writes=False)
        paths[collection] = coll_ops
        item_ops: dict[str, Any] = {}
        if "get" in can:
            item_ops["get"] = _operation(rtype, "get", writes=False)
        if "update" in can:
            item_ops["put"] = _operation(rtype, "put", writes=True)
        if "patch" in can:
            item_ops["patch"] = _operation(rtype, "patch", writes=True)
        if "delete" in can:
            item_ops["delete"] = _operation(rtype, "delete", writes=False)
        if item_ops:
            paths[item] = item_ops
        schema_group = rtype.group.removesuffix(".k8s.io") or "core"
        schemas[f"io.k8s.api.{schema_group}.{rtype.version}.{rtype.kind}"] = {
            "type": "object",
            "x-kubernetes-group-version-kind": [
                {"group": rtype.group, "version": rtype.version, "kind": rtype.kind}
            ],
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": VERSION_INFO["gitVersion"]},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def openapi_v2_operations() -> list[tuple[str, str, str, str]]:
    """(item path, group, version, kind) for every patchable type: what OpenAPI v2 lists."""
    return [
        (rt.path("{namespace}" if rt.namespaced else None, "{name}"), rt.group, rt.version, rt.kind)
        for rt in RESOURCE_TYPES
        if "patch" in rt.verbs
    ]


def openapi_v3_index() -> dict[str, Any]:
    paths = {}
    for group, versions in _group_versions().items():
        for version in versions:
            document = openapi_v3_document(group, version)
            digest = hashlib.sha512(json.dumps(document, sort_keys=True).encode()).hexdigest()
            path = _gv_path(group, version)
            paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest.upper()}"}
    return {"paths": paths}
