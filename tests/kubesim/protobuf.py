"""The few protobuf request bodies kubectl sends, decoded into their JSON form.

kubectl's typed clients (`auth can-i`, `auth can-i --list`, `auth whoami`)
send `application/vnd.kubernetes.protobuf` bodies and accept JSON answers.
kubesim decodes the Kubernetes envelope ("k8s\\0" + runtime.Unknown) and,
inside it, the review types by their field numbers. Any other protobuf body
is a 415, which a real server would never send, so a test meeting it learns
that kubesim needs another type here.
"""

from __future__ import annotations

from typing import Any

from tests.kubesim.status import ApiError, bad_request

CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"

# message schemas: field number -> (json name, nested schema or None for a string)
Schema = dict[int, tuple[str, "Schema | None"]]
_RESOURCE_ATTRIBUTES: Schema = {
    1: ("namespace", None),
    2: ("verb", None),
    3: ("group", None),
    4: ("version", None),
    5: ("resource", None),
    6: ("subresource", None),
    7: ("name", None),
}
_NON_RESOURCE_ATTRIBUTES: Schema = {1: ("path", None), 2: ("verb", None)}
_SCHEMAS: dict[str, Schema] = {
    "SelfSubjectAccessReview": {
        2: (
            "spec",
            {
                1: ("resourceAttributes", _RESOURCE_ATTRIBUTES),
                2: ("nonResourceAttributes", _NON_RESOURCE_ATTRIBUTES),
            },
        )
    },
    "SelfSubjectRulesReview": {2: ("spec", {1: ("namespace", None)})},
    "SelfSubjectReview": {},
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


def _message(data: bytes, schema: Schema) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for number, value in _fields(data):
        if number not in schema or not isinstance(value, bytes):
            continue
        name, nested = schema[number]
        out[name] = value.decode() if nested is None else _message(value, nested)
    return out


def decode(body: bytes) -> dict[str, Any]:
    if not body.startswith(_MAGIC):
        raise bad_request("protobuf body without the k8s envelope")
    envelope = dict(_fields(body[len(_MAGIC) :]))
    type_meta = envelope.get(1)
    raw = envelope.get(2, b"")
    meta = dict(_fields(type_meta)) if isinstance(type_meta, bytes) else {}
    api_version = meta.get(1, b"")
    kind = meta.get(2, b"")
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


# -- encoding: the OpenAPI v2 document kubectl 1.27/1.28 read ------------------------

# Clients ask with "...spec.v2@v1.0+protobuf"; servers answer with this spelling.
OPENAPI_V2_CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes | str) -> bytes:
    data = payload.encode() if isinstance(payload, str) else payload
    return _encode_varint(number << 3 | 2) + _encode_varint(len(data)) + data


def _gvk_extension(group: str, version: str, kind: str) -> bytes:
    yaml_text = f'group: "{group}"\nkind: {kind}\nversion: {version}\n'
    any_value = _field(2, yaml_text)  # openapi.v2.Any.yaml
    return _field(1, "x-kubernetes-group-version-kind") + _field(2, any_value)  # NamedAny


def _query_parameter(name: str) -> bytes:
    sub_schema = _field(2, "query") + _field(4, name) + _field(6, "string")
    non_body = _field(3, sub_schema)  # NonBodyParameter.query_parameter_sub_schema
    parameter = _field(2, non_body)  # Parameter.non_body_parameter
    return _field(1, parameter)  # ParametersItem.parameter


def openapi_v2(operations: list[tuple[str, str, str, str]]) -> bytes:
    """A gnostic `openapi.v2.Document` with one PATCH per (path, group, version, kind).

    kubectl 1.27/1.28 look there for the `fieldValidation` parameter and,
    finding it, leave validation to the server.
    """
    paths = b""
    for path, group, version, kind in operations:
        operation = _field(5, f"patch{kind}")
        for name in ("dryRun", "fieldManager", "fieldValidation"):
            operation += _field(8, _query_parameter(name))
        operation += _field(13, _gvk_extension(group, version, kind))
        path_item = _field(8, operation)  # PathItem.patch
        paths += _field(2, _field(1, path) + _field(2, path_item))  # Paths.path: NamedPathItem
    info = _field(1, "Kubernetes") + _field(2, "v1.35.0+kubesim")
    return _field(1, "2.0") + _field(2, info) + _field(8, paths)
