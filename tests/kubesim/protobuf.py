"""The protobuf request bodies kubectl sends, decoded into their JSON form.

kubectl's typed clients (`auth can-i`, `auth whoami`, `create namespace`,
`create secret generic`, `create configmap`, `create role`, `create
rolebinding`, `create serviceaccount`, `create quota`, ...) send
`application/vnd.kubernetes.protobuf` bodies and accept JSON answers.
kubesim decodes the Kubernetes envelope ("k8s\\0" + runtime.Unknown) and,
inside it, the kinds below by the field numbers of their `generated.proto`.
Any other kind is a 415, which a real server would never send, so a test
meeting it learns that kubesim needs that kind here (Pods are not: kubectl
sends them as JSON except from `kubectl run`).
"""

from __future__ import annotations

import base64
from typing import Any, Union

from tests.kubesim.status import ApiError, bad_request

CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"

# A schema maps field numbers to (json name, how to read it). A "how" is
# "string", "bytes" (base64 in JSON), "int", "bool", "quantity", a nested
# schema, or ("repeated", how) / ("map", how-of-values).
How = Union[str, "Schema", tuple[str, "How"]]
Schema = dict[int, tuple[str, How]]

_OBJECT_META: Schema = {
    1: ("name", "string"),
    2: ("generateName", "string"),
    3: ("namespace", "string"),
    6: ("resourceVersion", "string"),
    11: ("labels", ("map", "string")),
    12: ("annotations", ("map", "string")),
    14: ("finalizers", ("repeated", "string")),
}
_POLICY_RULE: Schema = {
    1: ("verbs", ("repeated", "string")),
    2: ("apiGroups", ("repeated", "string")),
    3: ("resources", ("repeated", "string")),
    4: ("resourceNames", ("repeated", "string")),
    5: ("nonResourceURLs", ("repeated", "string")),
}
_SUBJECT: Schema = {
    1: ("kind", "string"),
    2: ("apiGroup", "string"),
    3: ("name", "string"),
    4: ("namespace", "string"),
}
_ROLE_REF: Schema = {1: ("apiGroup", "string"), 2: ("kind", "string"), 3: ("name", "string")}
_BINDING: Schema = {
    1: ("metadata", _OBJECT_META),
    2: ("subjects", ("repeated", _SUBJECT)),
    3: ("roleRef", _ROLE_REF),
}
_ROLE: Schema = {1: ("metadata", _OBJECT_META), 2: ("rules", ("repeated", _POLICY_RULE))}
_RESOURCE_ATTRIBUTES: Schema = {
    1: ("namespace", "string"),
    2: ("verb", "string"),
    3: ("group", "string"),
    4: ("version", "string"),
    5: ("resource", "string"),
    6: ("subresource", "string"),
    7: ("name", "string"),
}
_NON_RESOURCE_ATTRIBUTES: Schema = {1: ("path", "string"), 2: ("verb", "string")}
_LOCAL_OBJECT_REFERENCE: Schema = {1: ("name", "string")}

_SCHEMAS: dict[str, Schema] = {
    "SelfSubjectAccessReview": {
        1: ("metadata", _OBJECT_META),
        2: (
            "spec",
            {
                1: ("resourceAttributes", _RESOURCE_ATTRIBUTES),
                2: ("nonResourceAttributes", _NON_RESOURCE_ATTRIBUTES),
            },
        ),
    },
    "SelfSubjectRulesReview": {
        1: ("metadata", _OBJECT_META),
        2: ("spec", {1: ("namespace", "string")}),
    },
    "SelfSubjectReview": {1: ("metadata", _OBJECT_META)},
    "Namespace": {
        1: ("metadata", _OBJECT_META),
        2: ("spec", {1: ("finalizers", ("repeated", "string"))}),
    },
    "Secret": {
        1: ("metadata", _OBJECT_META),
        2: ("data", ("map", "bytes")),
        3: ("type", "string"),
        4: ("stringData", ("map", "string")),
        5: ("immutable", "bool"),
    },
    "ConfigMap": {
        1: ("metadata", _OBJECT_META),
        2: ("data", ("map", "string")),
        3: ("binaryData", ("map", "bytes")),
        4: ("immutable", "bool"),
    },
    "ServiceAccount": {
        1: ("metadata", _OBJECT_META),
        3: ("imagePullSecrets", ("repeated", _LOCAL_OBJECT_REFERENCE)),
        4: ("automountServiceAccountToken", "bool"),
    },
    "ResourceQuota": {
        1: ("metadata", _OBJECT_META),
        2: ("spec", {1: ("hard", ("map", "quantity"))}),
    },
    "TokenRequest": {
        1: ("metadata", _OBJECT_META),
        2: (
            "spec",
            {1: ("audiences", ("repeated", "string")), 4: ("expirationSeconds", "int")},
        ),
    },
    "Role": _ROLE,
    "ClusterRole": _ROLE,
    "RoleBinding": _BINDING,
    "ClusterRoleBinding": _BINDING,
}


def _varint(data: bytes, index: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if index >= len(data):
            raise bad_request("malformed protobuf body")
        byte = data[index]
        index += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, index
        shift += 7


def _fields(data: bytes) -> list[tuple[int, int | bytes]]:
    fields: list[tuple[int, int | bytes]] = []
    index = 0
    while index < len(data):
        key, index = _varint(data, index)
        number, wire_type = key >> 3, key & 7
        value: int | bytes
        if wire_type == 0:
            value, index = _varint(data, index)
        elif wire_type == 2:
            length, index = _varint(data, index)
            value, index = data[index : index + length], index + length
        elif wire_type in (1, 5):
            size = 8 if wire_type == 1 else 4
            value, index = data[index : index + size], index + size
        else:
            raise bad_request("malformed protobuf body")
        fields.append((number, value))
    return fields


def _value(raw: int | bytes, how: How) -> Any:
    if how == "int":
        return raw if isinstance(raw, int) else 0
    if how == "bool":
        return bool(raw)
    if not isinstance(raw, bytes):
        raise bad_request("malformed protobuf body")
    if how == "string":
        return raw.decode()
    if how == "bytes":
        return base64.b64encode(raw).decode()
    if how == "quantity":
        return dict(_fields(raw)).get(1, b"").decode()  # type: ignore[union-attr]
    if isinstance(how, dict):
        return _message(raw, how)
    raise AssertionError(f"not a single-valued field: {how!r}")


def _message(data: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, raw in _fields(data):
        if number not in schema:
            continue
        name, how = schema[number]
        if isinstance(how, tuple) and how[0] == "repeated":
            out.setdefault(name, []).append(_value(raw, how[1]))
        elif isinstance(how, tuple) and how[0] == "map":
            entry = dict(_fields(raw)) if isinstance(raw, bytes) else {}
            key = entry.get(1, b"")
            key_text = key.decode() if isinstance(key, bytes) else str(key)
            out.setdefault(name, {})[key_text] = _value(entry.get(2, b""), how[1])
        else:
            value = _value(raw, how)
            if value != "" or how != "string":  # Go writes "" on the wire, omits it in JSON
                out[name] = value
    return out


def decode(body: bytes) -> dict[str, Any]:
    if not body.startswith(_MAGIC):
        raise bad_request("protobuf body without the k8s envelope")
    envelope = dict(_fields(body[len(_MAGIC) :]))
    type_meta, raw = envelope.get(1, b""), envelope.get(2, b"")
    meta = dict(_fields(type_meta)) if isinstance(type_meta, bytes) else {}
    api_version, kind = meta.get(1, b""), meta.get(2, b"")
    kind_text = kind.decode() if isinstance(kind, bytes) else ""
    schema = _SCHEMAS.get(kind_text)
    if schema is None or not isinstance(raw, bytes):
        raise ApiError(
            415,
            "UnsupportedMediaType",
            f"kubesim does not decode protobuf {kind_text or 'bodies'}; send JSON",
        )
    decoded = _message(raw, schema)
    decoded["kind"] = kind_text
    decoded["apiVersion"] = api_version.decode() if isinstance(api_version, bytes) else ""
    return decoded
