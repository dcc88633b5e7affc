"""OpenAPI v2 as gnostic protobuf: the document kubectl 1.27 and 1.28 read before `create -f`.

Those kubectls fetch `/openapi/v2` (protobuf only) to learn whether the
server validates fields itself; if the PATCH operation of the object's kind
declares the `fieldValidation` query parameter, kubectl sends
`fieldValidation=Strict` and validates nothing on its own. kubesim encodes
just that: one PATCH per kind with its parameters and its
`x-kubernetes-group-version-kind` extension (field numbers from gnostic's
OpenAPIv2.proto). Newer kubectls read OpenAPI v3 (`discovery.py`).
"""

from __future__ import annotations

# Clients ask with "...spec.v2@v1.0+protobuf"; servers answer with this spelling.
CONTENT_TYPE = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


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


def document(operations: list[tuple[str, str, str, str]]) -> bytes:
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
