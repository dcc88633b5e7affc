"""Validation of objects on create and update, with the real server's field paths and wording.

Two kinds of refusal, as on a real server:

- the body cannot be decoded into the type (a quantity that does not parse,
  secret data that is not base64): 400 BadRequest, "Pod in version "v1"
  cannot be handled as a Pod: ...";
- the decoded object is invalid: 422 Invalid, with one cause per field
  ("spec.containers: Required value", "metadata.name: Invalid value: ...").

Covered: object names (DNS-1123 subdomain, label, or path segment by type),
labels and annotation keys, pods (containers, names, images, resources,
restartPolicy, what an update may change), secrets and configmaps (keys,
base64 data), namespaces. Not covered: the rest of the Pod schema (volumes,
probes, affinity...), which kubesim trusts.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from typing import Any

from tests.kubesim import resources
from tests.kubesim.quantity import QuantityError, parse
from tests.kubesim.resources import ResourceType
from tests.kubesim.status import ApiError, bad_request, invalid

Cause = tuple[str, str, str]  # (field, reason, message)

_SUBDOMAIN_RE = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_LABEL_RE = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME_RE = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_RE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_CONFIG_KEY_RE = r"[-._a-zA-Z0-9]+"

SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', "
    f"regex used for validation is '{_SUBDOMAIN_RE}')"
)
LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
    "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
    f"regex used for validation is '{_LABEL_RE}')"
)
_QUALIFIED_NAME_MESSAGE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and "
    "end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', "
    f"regex used for validation is '{_QUALIFIED_NAME_RE}')"
)
_LABEL_VALUE_MESSAGE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' "
    "or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or "
    f"'my_value',  or '12345', regex used for validation is '{_LABEL_VALUE_RE}')"
)
_CONFIG_KEY_MESSAGE = (
    "a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. "
    f"'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
    f"'{_CONFIG_KEY_RE}')"
)
_RESTART_POLICIES = ("Always", "OnFailure", "Never")
_POD_UPDATE_MESSAGE = (
    "pod updates may not change fields other than `spec.containers[*].image`,"
    "`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` "
    "(only additions to existing tolerations),`spec.terminationGracePeriodSeconds` "
    "(allow it to be set to 1 if it was previously negative)"
)

_RBAC_TYPES = {"roles", "rolebindings", "clusterroles", "clusterrolebindings"}


def _quote(value: object) -> str:
    text = value if isinstance(value, str) else str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _invalid(field: str, value: object, detail: str) -> Cause:
    return (field, "FieldValueInvalid", f"Invalid value: {_quote(value)}: {detail}")


def _required(field: str, detail: str = "") -> Cause:
    return (field, "FieldValueRequired", "Required value" + (f": {detail}" if detail else ""))


def _subdomain_problems(value: str) -> list[str]:
    problems = []
    if len(value) > 253:
        problems.append("must be no more than 253 characters")
    if not re.fullmatch(_SUBDOMAIN_RE, value):
        problems.append(SUBDOMAIN_MESSAGE)
    return problems


def _label_problems(value: str) -> list[str]:
    problems = []
    if len(value) > 63:
        problems.append("must be no more than 63 characters")
    if not re.fullmatch(_LABEL_RE, value):
        problems.append(LABEL_MESSAGE)
    return problems


def _path_segment_problems(value: str) -> list[str]:
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    return [f"may not contain '{c}'" for c in ("/", "%") if c in value]


def _qualified_name_problems(key: str) -> list[str]:
    prefix, slash, name = key.rpartition("/")
    problems = []
    if slash and not prefix:
        problems.append("prefix part must be non-empty")
    elif slash:
        problems.extend(f"prefix part {p}" for p in _subdomain_problems(prefix))
    if not name:
        problems.append("name part must be non-empty")
    else:
        if len(name) > 63:
            problems.append("name part must be no more than 63 characters")
        if not re.fullmatch(_QUALIFIED_NAME_RE, name):
            problems.append(_QUALIFIED_NAME_MESSAGE)
    return problems


def _metadata_causes(rtype: ResourceType, meta: Mapping[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    name = meta.get("name") or ""
    if not name:
        causes.append(_required("metadata.name", "name or generateName is required"))
    else:
        if rtype.plural == "namespaces":
            problems = _label_problems(name)
        elif rtype.plural in _RBAC_TYPES:
            problems = _path_segment_problems(name)
        else:
            problems = _subdomain_problems(name)
        causes.extend(_invalid("metadata.name", name, problem) for problem in problems)
    for key, raw in (meta.get("labels") or {}).items():
        causes.extend(_invalid("metadata.labels", key, p) for p in _qualified_name_problems(key))
        value = raw if isinstance(raw, str) else str(raw)
        if len(value) > 63:
            causes.append(_invalid("metadata.labels", value, "must be no more than 63 characters"))
        if not re.fullmatch(_LABEL_VALUE_RE, value):
            causes.append(_invalid("metadata.labels", value, _LABEL_VALUE_MESSAGE))
    for key in meta.get("annotations") or {}:
        causes.extend(
            _invalid("metadata.annotations", key, p) for p in _qualified_name_problems(key.lower())
        )
    return causes


# -- decoding (400) ---------------------------------------------------------------


def _undecodable(rtype: ResourceType, detail: str) -> ApiError:
    return bad_request(
        f'{rtype.kind} in version "{rtype.version}" cannot be handled as a {rtype.kind}: {detail}'
    )


def _go_base64_error(text: str) -> str | None:
    """Go's StdEncoding error for `text`, or None if it decodes."""
    try:
        base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        pass
    else:
        return None
    alphabet = re.compile(r"[A-Za-z0-9+/=]")
    for index, char in enumerate(text):
        if not alphabet.match(char):
            return f"illegal base64 data at input byte {index}"
    return f"illegal base64 data at input byte {max(len(text) - len(text) % 4, 0)}"


def _container_resource_lists(pod: Mapping[str, Any]) -> list[tuple[str, Mapping[str, Any]]]:
    out = []
    spec = pod.get("spec") or {}
    for kind in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(kind) or []):
            if not isinstance(container, Mapping):
                continue
            res = container.get("resources") or {}
            for section in ("requests", "limits"):
                out.append((f"spec.{kind}[{index}].resources.{section}", res.get(section) or {}))
    return out


def check_decodable(rtype: ResourceType, obj: Mapping[str, Any]) -> None:
    """Refuse, with 400, what the real server could not even decode."""
    if rtype is resources.PODS:
        spec = obj.get("spec") or {}
        for kind in ("containers", "initContainers"):
            if kind in spec and spec[kind] is not None and not isinstance(spec[kind], list):
                raise _undecodable(
                    rtype,
                    f"json: cannot unmarshal {type(spec[kind]).__name__} into Go struct field "
                    f"PodSpec.spec.{kind} of type []v1.Container",
                )
        for _, listing in _container_resource_lists(obj):
            for value in listing.values():
                try:
                    parse(value)
                except QuantityError as exc:
                    raise _undecodable(rtype, str(exc)) from None
    quantities: list[Any] = []
    if rtype is resources.RESOURCEQUOTAS:
        quantities = list(((obj.get("spec") or {}).get("hard") or {}).values())
    if rtype is resources.LIMITRANGES:
        for item in (obj.get("spec") or {}).get("limits") or []:
            for section in ("max", "min", "default", "defaultRequest", "maxLimitRequestRatio"):
                quantities.extend(((item or {}).get(section) or {}).values())
    for value in quantities:
        try:
            parse(value)
        except QuantityError as exc:
            raise _undecodable(rtype, str(exc)) from None
    if rtype is resources.SECRETS:
        for value in (obj.get("data") or {}).values():
            problem = _go_base64_error(value if isinstance(value, str) else "")
            if problem:
                raise _undecodable(rtype, problem)


# -- validation (422) ---------------------------------------------------------------


def _pod_causes(pod: Mapping[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    spec = pod.get("spec") or {}
    containers = spec.get("containers") or []
    if not containers:
        causes.append(_required("spec.containers"))
    seen: set[str] = set()
    for kind in ("initContainers", "containers"):
        for index, container in enumerate(spec.get(kind) or []):
            path = f"spec.{kind}[{index}]"
            name = container.get("name") or ""
            if not name:
                causes.append(_required(f"{path}.name"))
            else:
                causes.extend(_invalid(f"{path}.name", name, p) for p in _label_problems(name))
                if name in seen:
                    causes.append(
                        (f"{path}.name", "FieldValueDuplicate", f"Duplicate value: {_quote(name)}")
                    )
                seen.add(name)
            if not container.get("image"):
                causes.append(_required(f"{path}.image"))
            causes.extend(_resource_causes(path, container.get("resources") or {}))
    policy = spec.get("restartPolicy")
    if policy is not None and policy not in _RESTART_POLICIES:
        supported = ", ".join(f'"{p}"' for p in _RESTART_POLICIES)
        causes.append(
            (
                "spec.restartPolicy",
                "FieldValueNotSupported",
                f"Unsupported value: {_quote(policy)}: supported values: {supported}",
            )
        )
    return causes


def _resource_causes(path: str, res: Mapping[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    requests, limits = res.get("requests") or {}, res.get("limits") or {}
    for section, listing in (("limits", limits), ("requests", requests)):
        for name, value in listing.items():
            if parse(value).value < 0:
                causes.append(
                    _invalid(
                        f"{path}.resources.{section}[{name}]",
                        value,
                        "must be greater than or equal to 0",
                    )
                )
    for name, request in requests.items():
        if name in limits and parse(request) > parse(limits[name]):
            limit = parse(limits[name])
            causes.append(
                _invalid(
                    f"{path}.resources.requests",
                    str(parse(request)),
                    f"must be less than or equal to {name} limit of {limit}",
                )
            )
    return causes


def _config_causes(obj: Mapping[str, Any], sections: tuple[str, ...]) -> list[Cause]:
    causes: list[Cause] = []
    for section in sections:
        for key in obj.get(section) or {}:
            if not re.fullmatch(_CONFIG_KEY_RE, key):
                causes.append(_invalid(f"{section}[{key}]", key, _CONFIG_KEY_MESSAGE))
    return causes


def validate(rtype: ResourceType, obj: Mapping[str, Any]) -> None:
    """Raise 422 Invalid with every cause found, as the real server reports them."""
    meta = obj.get("metadata") or {}
    causes = _metadata_causes(rtype, meta)
    if rtype is resources.PODS:
        causes.extend(_pod_causes(obj))
    elif rtype is resources.SECRETS:
        causes.extend(_config_causes(obj, ("data",)))
    elif rtype is resources.CONFIGMAPS:
        causes.extend(_config_causes(obj, ("data", "binaryData")))
    if causes:
        raise invalid(rtype, meta.get("name") or "", causes)


def validate_pod_update(old: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """A pod's spec is immutable but for images, deadlines, added tolerations and grace."""
    old_spec, new_spec = dict(old.get("spec") or {}), dict(new.get("spec") or {})
    for spec in (old_spec, new_spec):
        for kind in ("containers", "initContainers"):
            spec[kind] = [{**c, "image": None} for c in spec.get(kind) or []]
        for mutable in ("activeDeadlineSeconds", "terminationGracePeriodSeconds"):
            spec.pop(mutable, None)
    old_tolerations = old_spec.pop("tolerations", None) or []
    new_tolerations = new_spec.pop("tolerations", None) or []
    added_only = all(t in new_tolerations for t in old_tolerations)
    if old_spec != new_spec or not added_only:
        name = (new.get("metadata") or {}).get("name") or ""
        raise invalid(
            resources.PODS,
            name,
            [("spec", "FieldValueForbidden", f"Forbidden: {_POD_UPDATE_MESSAGE}")],
        )
