"""A container's command line and environment, resolved as the kubelet resolves them.

- env in order: `value` (with `$(VAR)` expanded against the variables defined
  before it), `valueFrom` fieldRef / secretKeyRef / configMapKeyRef /
  resourceFieldRef, and `envFrom` (configMapRef / secretRef with prefix);
- `$(VAR)` expansion in command and args (`$$(VAR)` is a literal `$(VAR)`;
  an unknown `$(VAR)` stays as written);
- kubesim has no images, so the "image defaults" are fixed: the image's
  ENTRYPOINT is empty, its CMD is `sleep infinity`, its PATH puts the
  directory of the Python that runs kubesim first, HOME is /root. So no
  command and no args runs `sleep infinity`; args alone run as the command.

Missing Secrets, ConfigMaps or keys raise `ConfigError`, worded like the
kubelet's CreateContainerConfigError messages.
"""

from __future__ import annotations

import base64
import os
import re
import sys
from collections.abc import Mapping

from tests.kubesim import resources
from tests.kubesim.quantity import parse_quantity
from tests.kubesim.store import Obj, Store
from tests.kubesim.volumes import MountError, field_value

IMAGE_CMD = ("sleep", "infinity")
_REFERENCE = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")


class ConfigError(Exception):
    """CreateContainerConfigError: the container cannot be configured (yet)."""


def image_path() -> str:
    """The image's PATH: the Python running kubesim first, then the usual directories."""
    system = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
    return f"{os.path.dirname(sys.executable)}:{system}"


def expand(text: str, variables: Mapping[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name = match.group(1)
        return variables.get(name, match.group(0))

    return _REFERENCE.sub(replace, text)


def _lookup(store: Store, pod: Obj, ref: Obj, *, secret: bool) -> bytes | None:
    namespace = pod["metadata"].get("namespace", "default")
    rtype = resources.SECRETS if secret else resources.CONFIGMAPS
    kind, what = ("secret", "Secret") if secret else ("configmap", "ConfigMap")
    found = store.try_get(rtype, namespace, ref.get("name", ""))
    if found is None:
        if ref.get("optional"):
            return None
        raise ConfigError(f'{kind} "{ref.get("name", "")}" not found')
    data = _data(found, secret=secret)
    if ref["key"] not in data:
        if ref.get("optional"):
            return None
        raise ConfigError(f"couldn't find key {ref['key']} in {what} {namespace}/{ref['name']}")
    return data[ref["key"]]


def _data(obj: Obj, *, secret: bool) -> dict[str, bytes]:
    if secret:
        data = {k: base64.b64decode(v) for k, v in (obj.get("data") or {}).items()}
        data.update({k: v.encode() for k, v in (obj.get("stringData") or {}).items()})
        return data
    data = {k: v.encode() for k, v in (obj.get("data") or {}).items()}
    data.update({k: base64.b64decode(v) for k, v in (obj.get("binaryData") or {}).items()})
    return data


def _resource_field(container: Obj, ref: Obj) -> str:
    section, _, name = ref["resource"].partition(".")
    value = (container.get("resources", {}).get(section) or {}).get(name)
    if value is None:
        return "0"
    divisor = parse_quantity(ref.get("divisor", "1"))
    amount = parse_quantity(value) / divisor
    return str(-(-amount.numerator // amount.denominator))


def environment(store: Store, pod: Obj, container: Obj) -> dict[str, str]:
    env: dict[str, str] = {"PATH": image_path(), "HOSTNAME": pod["metadata"]["name"]}
    for source in container.get("envFrom") or []:
        secret = "secretRef" in source
        ref = source.get("secretRef") or source.get("configMapRef") or {}
        namespace = pod["metadata"].get("namespace", "default")
        rtype = resources.SECRETS if secret else resources.CONFIGMAPS
        found = store.try_get(rtype, namespace, ref.get("name", ""))
        if found is None:
            if ref.get("optional"):
                continue
            kind = "secret" if secret else "configmap"
            raise ConfigError(f'{kind} "{ref.get("name", "")}" not found')
        for key, value in _data(found, secret=secret).items():
            env[source.get("prefix", "") + key] = value.decode(errors="replace")
    for var in container.get("env") or []:
        name = var["name"]
        if "valueFrom" not in var:
            env[name] = expand(var.get("value", ""), env)
            continue
        value_from: Obj = var["valueFrom"]
        if "fieldRef" in value_from:
            try:
                env[name] = field_value(pod, value_from["fieldRef"]["fieldPath"])
            except MountError as error:
                raise ConfigError(str(error)) from None
        elif "resourceFieldRef" in value_from:
            env[name] = _resource_field(container, value_from["resourceFieldRef"])
        elif "secretKeyRef" in value_from or "configMapKeyRef" in value_from:
            key_ref = value_from.get("secretKeyRef") or value_from["configMapKeyRef"]
            found_value = _lookup(store, pod, key_ref, secret="secretKeyRef" in value_from)
            if found_value is not None:
                env[name] = found_value.decode(errors="replace")
    env.setdefault("HOME", "/root")
    return env


def command_line(container: Obj, env: Mapping[str, str]) -> list[str]:
    command = [expand(part, env) for part in container.get("command") or []]
    args = [expand(part, env) for part in container.get("args") or []]
    if not command:
        return args or list(IMAGE_CMD)
    return command + args
