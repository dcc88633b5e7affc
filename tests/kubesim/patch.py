"""PATCH bodies: JSON merge patch, strategic merge patch and JSON patch.

- `application/merge-patch+json` (RFC 7386): maps merge, `null` deletes,
  anything else (lists included) replaces.
- `application/strategic-merge-patch+json`: like a merge patch, but lists
  the Kubernetes schema marks as "merge" are merged element by element on
  their merge key instead of replaced. kubesim knows the merge keys of the
  lists its clients patch, by field name: containers, initContainers,
  ephemeralContainers, env, volumes, imagePullSecrets (`name`),
  volumeMounts (`mountPath`), ports (`containerPort`), conditions (`type`),
  ownerReferences (`uid`); `finalizers` merges as a set. Other lists are
  replaced, as for a merge patch. `$patch: delete` on a list element
  removes it, `$patch: replace` on a map replaces it; `$retainKeys`,
  `$setElementOrder` and `$deleteFromPrimitiveList` directives are dropped
  (element order and retained-key pruning are where kubesim differs from a
  real server).
- `application/json-patch+json` (RFC 6902): add, remove, replace, move,
  copy, test.

Failures raise `PatchError`; the API layer turns it into the server's
status code.
"""

from __future__ import annotations

import copy
from typing import Any

MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "imagePullSecrets": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "conditions": "type",
    "ownerReferences": "uid",
}
SET_LISTS = {"finalizers"}
_DIRECTIVE_PREFIXES = ("$setElementOrder/", "$deleteFromPrimitiveList/", "$retainKeys")


class PatchError(ValueError):
    """The patch does not apply; `unprocessable` says 422 rather than 400."""

    def __init__(self, message: str, *, unprocessable: bool = False) -> None:
        super().__init__(message)
        self.unprocessable = unprocessable


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key == "$patch" or key.startswith(_DIRECTIVE_PREFIXES):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and key in MERGE_KEYS:
            result[key] = _merge_list(result.get(key), value, MERGE_KEYS[key])
        elif isinstance(value, list) and key in SET_LISTS:
            current = list(result.get(key) or [])
            result[key] = current + [item for item in value if item not in current]
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    return result


def _merge_list(current: Any, patch: list[Any], merge_key: str) -> list[Any]:
    result = [copy.deepcopy(item) for item in current] if isinstance(current, list) else []
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            if isinstance(item, dict) and item.get("$patch") == "replace":
                return [i for i in patch if not (isinstance(i, dict) and "$patch" in i)]
            raise PatchError(f"map: {item} does not contain declared merge key: {merge_key}")
        position = next(
            (i for i, existing in enumerate(result) if existing.get(merge_key) == item[merge_key]),
            None,
        )
        if item.get("$patch") == "delete":
            if position is not None:
                del result[position]
            continue
        if position is None:
            result.append(strategic_merge_patch({}, item))
        else:
            result[position] = strategic_merge_patch(result[position], item)
    return result


# -- JSON patch ---------------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer: {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> tuple[Any, str]:
    node = doc
    for part in parts[:-1]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            raise PatchError(f"doc is missing path: {path}: missing value", unprocessable=True)
    return node, parts[-1]


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent, last = _parent(doc, parts, path)
    if isinstance(parent, dict) and last in parent:
        return parent[last]
    if isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        return parent[int(last)]
    raise PatchError(f"doc is missing path: {path}: missing value", unprocessable=True)


def _add(doc: Any, path: str, value: Any) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent, last = _parent(doc, parts, path)
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        if last == "-":
            parent.append(value)
        elif last.isdigit() and int(last) <= len(parent):
            parent.insert(int(last), value)
        else:
            raise PatchError(
                f"add operation does not apply: doc is missing path: {path}", unprocessable=True
            )
    else:
        raise PatchError(
            f"add operation does not apply: doc is missing path: {path}", unprocessable=True
        )
    return doc


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    parent, last = _parent(doc, parts, path)
    if isinstance(parent, dict) and last in parent:
        del parent[last]
    elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
        del parent[int(last)]
    else:
        raise PatchError(
            f"remove operation does not apply: doc is missing path: {path}", unprocessable=True
        )
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise PatchError("json: cannot unmarshal object into Go value of type jsonpatch.Patch")
    doc = copy.deepcopy(target)
    for operation in operations:
        if not isinstance(operation, dict):
            raise PatchError("invalid JSON patch operation")
        op, path = operation.get("op"), operation.get("path", "")
        if op == "add":
            doc = _add(doc, path, copy.deepcopy(operation.get("value")))
        elif op == "remove":
            doc = _remove(doc, path)
        elif op == "replace":
            _get(doc, path)
            doc = _remove(doc, path) if _pointer(path) else doc
            doc = _add(doc, path, copy.deepcopy(operation.get("value")))
        elif op in ("move", "copy"):
            value = copy.deepcopy(_get(doc, operation.get("from", "")))
            if op == "move":
                doc = _remove(doc, operation.get("from", ""))
            doc = _add(doc, path, value)
        elif op == "test":
            if _get(doc, path) != operation.get("value"):
                raise PatchError(f"testing value {path} failed: test failed", unprocessable=True)
        else:
            raise PatchError(f"Unexpected kind: {op}", unprocessable=True)
    return doc
