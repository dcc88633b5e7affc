"""The syntax of names Kubernetes checks: object names, label keys and values, images, env.

Each ``*_problem`` function returns None for a good value and otherwise a
phrase saying what is wrong ("is longer than 63 characters"), so a caller can
put it after the field's name in an error. The rules are the API server's
own (`IsDNS1123Subdomain`, `IsQualifiedName`, `IsValidLabelValue`, the
distribution reference grammar), checked here so that a kernelspec is
refused with its file and field named instead of a pod creation failing later.

Nothing here talks to the API.
"""

from __future__ import annotations

import re

_DNS_LABEL = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?"
_DNS_SUBDOMAIN = re.compile(rf"^{_DNS_LABEL}(?:\.{_DNS_LABEL})*$")
_NAME_PART = re.compile(r"^[A-Za-z0-9](?:[-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
# The distribution/reference grammar, simplified: [host[:port]/]path[:tag][@digest].
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE_REFERENCE = re.compile(
    r"^(?:(?P<host>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*(?::\d+)?)/)?"
    rf"(?P<path>{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::(?P<tag>\w[\w.-]{0,127}))?"
    r"(?:@(?P<digest>sha256:[0-9a-f]{64}))?$"
)

DNS_SUBDOMAIN_ALLOWED = "lower-case letters, digits, '-' and '.', such as team-registry"
QUALIFIED_NAME_ALLOWED = (
    "a name of letters, digits, '-', '_' and '.' (at most 63), optionally after a DNS prefix "
    "and '/', such as nvidia.com/gpu.present"
)
LABEL_VALUE_ALLOWED = (
    "at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit, "
    "or empty"
)
IMAGE_ALLOWED = (
    "an image reference REGISTRY/PATH:TAG with a lower-case path, such as "
    "quay.io/jupyter/base-notebook:2024-12-02"
)
ENV_NAME_ALLOWED = "letters, digits, '_', '-' and '.', not starting with a digit"


def dns_subdomain_problem(name: str) -> str | None:
    """Secret, ServiceAccount and most object names."""
    if not name:
        return "is empty"
    if len(name) > 253:
        return "is longer than 253 characters"
    if not _DNS_SUBDOMAIN.match(name):
        return f"is {name!r}, which is not a DNS subdomain name"
    return None


def qualified_name_problem(key: str) -> str | None:
    """Label and annotation keys, node selector keys, toleration keys: `[prefix/]name`."""
    prefix, slash, name = key.rpartition("/")
    if not name:
        return "has an empty name" if key else "is empty"
    if slash and (dns_subdomain_problem(prefix) is not None):
        return f"is {key!r}, whose prefix {prefix!r} is not a DNS subdomain"
    if len(name) > 63:
        return f"is {key!r}, whose name part is longer than 63 characters"
    if not _NAME_PART.match(name):
        return f"is {key!r}, which is not a qualified name"
    return None


def label_value_problem(value: str) -> str | None:
    if len(value) > 63:
        return f"is {value!r}, longer than 63 characters"
    if value and not _NAME_PART.match(value):
        return f"is {value!r}, which is not a label value"
    return None


def image_problem(image: str) -> str | None:
    if not _IMAGE_REFERENCE.match(image):
        return f"is {image!r}, which is not an image reference"
    return None


def env_name_problem(name: str) -> str | None:
    if not _ENV_NAME.match(name):
        return f"has the name {name!r}, which is not an environment variable name"
    return None
