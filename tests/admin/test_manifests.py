"""A team's objects as data: the Role's exact rules, YAML and JSON output, reading a spec back."""

from __future__ import annotations

import json

import yaml

from jkctl.admin import manifests
from jkctl.admin.spec import TeamOptions, team_spec

SPEC = team_spec(
    "geo",
    TeamOptions(cpu="64", memory="256Gi", gpu="4", max_kernels=40, members=["alice"]),
)


def test_the_role_grants_exactly_what_jkctl_needs() -> None:
    role = manifests.role(SPEC)
    granted = {
        (rule["apiGroups"][0], resource, verb)
        for rule in role["rules"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    expected = {
        *{("", "pods", v) for v in ("create", "get", "list", "watch", "delete", "patch")},
        ("", "pods/portforward", "create"),
        ("", "pods/portforward", "get"),
        ("", "pods/log", "get"),
        *{("", "secrets", v) for v in ("create", "get", "list", "patch", "delete")},
        *{("", "events", v) for v in ("get", "list", "watch")},
        *{("", "configmaps", v) for v in ("create", "get", "list", "patch", "delete")},
        *{("batch", "jobs", v) for v in ("create", "get", "list", "watch", "delete")},
        *{
            ("apps", "daemonsets", v)
            for v in ("create", "get", "list", "watch", "update", "delete")
        },
        *{("", r, v) for r in ("resourcequotas", "limitranges") for v in ("get", "list")},
    }
    assert granted == expected
    assert all(grant.why for grant in manifests.GRANTS)
    # Nothing that would let a member widen their own share or reach other teams.
    assert not {r for _, r, _ in granted} & {"roles", "rolebindings", "namespaces", "pods/exec"}


def test_yaml_and_json_carry_the_same_objects() -> None:
    objects = manifests.team_manifests(SPEC)
    text = manifests.to_yaml(objects)
    assert text.startswith("---\napiVersion: v1\nkind: Namespace\n")
    assert "&id" not in text and "*id" not in text  # no YAML aliases
    assert list(yaml.safe_load_all(text)) == objects
    listed = json.loads(manifests.to_json(objects))
    assert (listed["apiVersion"], listed["kind"]) == ("v1", "List")
    assert listed["items"] == objects


def test_a_team_without_people_has_no_binding() -> None:
    spec = team_spec("lab", TeamOptions(cpu="1", memory="1Gi"))
    kinds = [obj["kind"] for obj in manifests.team_manifests(spec)]
    assert "RoleBinding" not in kinds


def test_the_spec_reads_back_from_the_objects() -> None:
    spec = team_spec(
        "geo", TeamOptions(cpu="1.5", memory="3Gi", gpu="1", groups=["g"], members=["a", "b"])
    )
    assert (
        manifests.spec_from_objects(
            "geo",
            quota=manifests.resource_quota(spec),
            limits=manifests.limit_range(spec),
            binding=manifests.role_binding(spec),
        )
        == spec
    )
    assert manifests.spec_from_objects("geo", quota=None, limits=None, binding=None) is None
