"""Pod volumes on the host side: what each volume holds, written the way the kubelet writes it.

Each volume is a directory under the pod's state directory; the container
shim binds it at the mountPath inside the container's own mount namespace.
Secret, configMap, downwardAPI and projected volumes are written with the
kubelet's atomic writer: the files live in a timestamped `..2024_...` directory,
`..data` is a symlink to it, and each visible name is a symlink through
`..data`. An update writes a new directory and renames a `..data_tmp` symlink
over `..data`, so a reader sees the old set or the new set, never a mix; this
is what makes live downward-API annotations safe to read.

Errors are `MountError`s worded like the kubelet's FailedMount events. Not
done: persistentVolumeClaim and other network volumes, serviceAccountToken
projections (no token issuer), ownership/fsGroup.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.kubesim import resources
from tests.kubesim.store import Obj, Store

Payload = dict[str, tuple[bytes, int]]  # relative path -> (content, mode)
DEFAULT_MODE = 0o644


class MountError(Exception):
    """The volume cannot be set up yet; the message is the FailedMount event's."""


def field_value(pod: Obj, path: str) -> str:
    """A downward-API fieldRef, as env vars and downwardAPI volumes resolve it."""
    meta, spec, status = pod["metadata"], pod.get("spec", {}), pod.get("status", {})
    if path in ("metadata.labels", "metadata.annotations"):
        values = meta.get(path.split(".")[1]) or {}
        return "\n".join(f"{key}={json.dumps(values[key])}" for key in sorted(values))
    for prefix in ("metadata.labels['", "metadata.annotations['"):
        if path.startswith(prefix) and path.endswith("']"):
            key = path[len(prefix) : -2]
            return str((meta.get(prefix.split(".")[1][:-2]) or {}).get(key, ""))
    simple: dict[str, Callable[[], Any]] = {
        "metadata.name": lambda: meta["name"],
        "metadata.namespace": lambda: meta.get("namespace", "default"),
        "metadata.uid": lambda: meta["uid"],
        "spec.nodeName": lambda: spec.get("nodeName", ""),
        "spec.serviceAccountName": lambda: spec.get("serviceAccountName", "default"),
        "status.podIP": lambda: status.get("podIP", ""),
        "status.podIPs": lambda: ",".join(ip["ip"] for ip in status.get("podIPs", [])),
        "status.hostIP": lambda: status.get("hostIP", ""),
        "status.hostIPs": lambda: ",".join(ip["ip"] for ip in status.get("hostIPs", [])),
    }
    if path not in simple:
        raise MountError(f"unsupported fieldPath: {path}")
    return str(simple[path]())


def _decoded(secret: Obj) -> dict[str, bytes]:
    data = {key: base64.b64decode(value) for key, value in (secret.get("data") or {}).items()}
    data.update({key: value.encode() for key, value in (secret.get("stringData") or {}).items()})
    return data


def _configmap_data(configmap: Obj) -> dict[str, bytes]:
    data = {key: value.encode() for key, value in (configmap.get("data") or {}).items()}
    data.update(
        {key: base64.b64decode(value) for key, value in (configmap.get("binaryData") or {}).items()}
    )
    return data


def _keyed(
    store: Store, pod: Obj, volume: str, source: Obj, *, secret: bool, default_mode: int
) -> Payload:
    namespace = pod["metadata"].get("namespace", "default")
    rtype = resources.SECRETS if secret else resources.CONFIGMAPS
    name = source.get("secretName") if secret else source.get("name")
    name = name or source.get("name", "")
    found = store.try_get(rtype, namespace, name)
    kind = "secret" if secret else "configmap"
    if found is None:
        if source.get("optional"):
            return {}
        raise MountError(
            f'MountVolume.SetUp failed for volume "{volume}" : {kind} "{name}" not found'
        )
    data = _decoded(found) if secret else _configmap_data(found)
    mode = source.get("defaultMode", default_mode)
    items = source.get("items")
    if not items:
        return {key: (value, mode) for key, value in data.items()}
    payload: Payload = {}
    for item in items:
        if item["key"] not in data:
            if source.get("optional"):
                continue
            what = "secret" if secret else "config"
            raise MountError(
                f'MountVolume.SetUp failed for volume "{volume}" : '
                f"{kind} references non-existent {what} key: {item['key']}"
            )
        payload[item["path"]] = (data[item["key"]], item.get("mode", mode))
    return payload


def _downward(pod: Obj, volume: str, source: Obj, *, default_mode: int) -> Payload:
    mode = source.get("defaultMode", default_mode)
    payload: Payload = {}
    for item in source.get("items") or []:
        if "fieldRef" not in item:
            raise MountError(
                f'MountVolume.SetUp failed for volume "{volume}" : only fieldRef is supported'
            )
        try:
            value = field_value(pod, item["fieldRef"]["fieldPath"])
        except MountError as error:
            raise MountError(f'MountVolume.SetUp failed for volume "{volume}" : {error}') from None
        payload[item["path"]] = (value.encode(), item.get("mode", mode))
    return payload


def payload_for(store: Store, pod: Obj, volume: Obj) -> Payload | None:
    """The files of an atomic-writer volume, or None for a plain directory volume."""
    name = volume["name"]
    if "secret" in volume:
        return _keyed(store, pod, name, volume["secret"], secret=True, default_mode=DEFAULT_MODE)
    if "configMap" in volume:
        return _keyed(
            store, pod, name, volume["configMap"], secret=False, default_mode=DEFAULT_MODE
        )
    if "downwardAPI" in volume:
        return _downward(pod, name, volume["downwardAPI"], default_mode=DEFAULT_MODE)
    if "projected" in volume:
        projected = volume["projected"]
        mode = projected.get("defaultMode", DEFAULT_MODE)
        payload: Payload = {}
        for source in projected.get("sources") or []:
            if "secret" in source:
                payload |= _keyed(
                    store, pod, name, source["secret"], secret=True, default_mode=mode
                )
            elif "configMap" in source:
                payload |= _keyed(
                    store, pod, name, source["configMap"], secret=False, default_mode=mode
                )
            elif "downwardAPI" in source:
                payload |= _downward(pod, name, source["downwardAPI"], default_mode=mode)
            else:
                raise MountError(
                    f'MountVolume.SetUp failed for volume "{name}" : '
                    f"unsupported projected source {sorted(source)}"
                )
        return payload
    return None


def live_sources(volume: Obj) -> bool:
    """Whether a volume's content follows the pod's own metadata (downward API)."""
    if "downwardAPI" in volume:
        return True
    return any("downwardAPI" in source for source in volume.get("projected", {}).get("sources", []))


def setup(store: Store, pod: Obj, volume: Obj, directory: Path) -> Path:
    """Create or refresh one volume under `directory`; returns the host path to bind."""
    name = volume["name"]
    target = directory / name
    if "emptyDir" in volume:
        target.mkdir(mode=0o777, parents=True, exist_ok=True)
        return target
    if "hostPath" in volume:
        path = Path(volume["hostPath"]["path"])
        if volume["hostPath"].get("type") == "DirectoryOrCreate":
            path.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            raise MountError(
                f'MountVolume.SetUp failed for volume "{name}" : hostPath type check failed: '
                f"{path} is not a directory"
            )
        return path
    payload = payload_for(store, pod, volume)
    if payload is None:
        kinds = sorted(key for key in volume if key != "name")
        raise MountError(
            f'MountVolume.SetUp failed for volume "{name}" : kubesim does not support {kinds}'
        )
    target.mkdir(mode=0o755, parents=True, exist_ok=True)
    write_atomically(target, payload)
    return target


def write_atomically(target: Path, payload: Payload) -> bool:
    """The kubelet's AtomicWriter; returns whether anything changed."""
    data_link = target / "..data"
    if data_link.is_symlink() and _current(target) == payload:
        return False
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime()) + str(secrets.randbelow(10**10))
    new_dir = target / stamp
    new_dir.mkdir(mode=0o755)
    for relative, (content, mode) in payload.items():
        path = new_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        path.chmod(mode)
    old_dir = os.readlink(data_link) if data_link.is_symlink() else None
    tmp_link = target / "..data_tmp"
    if tmp_link.is_symlink():
        tmp_link.unlink()
    tmp_link.symlink_to(stamp)
    tmp_link.rename(data_link)
    visible = {relative.split("/", 1)[0] for relative in payload}
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.name not in visible and entry.is_symlink():
            entry.unlink()
    for name in visible:
        link = target / name
        if not link.is_symlink():
            link.symlink_to(f"..data/{name}")
    if old_dir and old_dir != stamp:
        shutil.rmtree(target / old_dir, ignore_errors=True)
    return True


def _current(target: Path) -> Payload:
    base = target / "..data"
    found: Payload = {}
    for path in base.rglob("*"):
        if path.is_file():
            found[str(path.relative_to(base))] = (path.read_bytes(), path.stat().st_mode & 0o7777)
    return found
