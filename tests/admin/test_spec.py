"""Options checked before anything reaches the cluster: each error names the option and syntax."""

from __future__ import annotations

import pytest

from jkctl.admin.spec import TeamOptions, TeamSpec, team_spec
from jkctl.errors import UsageError


def refused(name: str = "geo", **options: object) -> UsageError:
    with pytest.raises(UsageError) as caught:
        team_spec(name, TeamOptions(**options))  # type: ignore[arg-type]
    return caught.value


def test_a_full_spec_is_canonical() -> None:
    spec = team_spec(
        "geo",
        TeamOptions(
            cpu="0.5",
            memory="4096Mi",
            gpu="2",
            max_kernels=3,
            members=["alice,bob", "alice"],
            groups=["geo-team"],
        ),
    )
    assert spec == TeamSpec(
        name="geo",
        cpu="500m",
        memory="4Gi",
        gpu=2,
        max_kernels=3,
        default_kernel_cpu="500m",  # the usual 1 CPU would not fit in the team
        default_kernel_memory="4Gi",
        members=("alice", "bob"),
        groups=("geo-team",),
    )


def test_update_lays_options_over_the_team() -> None:
    base = team_spec("geo", TeamOptions(cpu="64", memory="256Gi", gpu="4", members=["alice"]))
    spec = team_spec("geo", TeamOptions(gpu="8"), base=base)
    assert (spec.cpu, spec.memory, spec.gpu, spec.members) == ("64", "256Gi", 8, ("alice",))
    assert spec.default_kernel_cpu == "1" and spec.default_kernel_memory == "4Gi"


@pytest.mark.parametrize(
    ("options", "message", "hint"),
    [
        (
            {"cpu": "64", "memory": "256GB"},
            "--memory 256GB is not an amount Kubernetes understands (Kubernetes writes 256G)",
            "write bytes with a suffix such as 256Gi, 512Mi or 4G",
        ),
        (
            {"cpu": "2 cores", "memory": "1Gi"},
            "--cpu 2 cores is not an amount Kubernetes understands",
            "write a number of CPUs such as 64 or 0.5, or millicores such as 500m",
        ),
        (
            {"cpu": "0", "memory": "1Gi"},
            "--cpu 0 must be more than zero",
            "write a number of CPUs such as 64 or 0.5, or millicores such as 500m",
        ),
        (
            {"cpu": "4", "memory": "1Gi", "gpu": "1.5"},
            "--gpu 1.5 must be a whole number of GPUs, zero or more",
            "write a whole number such as 4",
        ),
        (
            {"cpu": "4", "memory": "1Gi", "max_kernels": 0},
            "--max-kernels 0 would let team geo run nothing",
            "give a whole number such as 4 of at least 1",
        ),
        (
            {"cpu": "4", "memory": "8Gi", "default_kernel_cpu": "8"},
            "--default-kernel-cpu 8 is more than team geo's whole quota (--cpu 4): no kernel "
            "of the default size could start",
            "lower --default-kernel-cpu or raise --cpu",
        ),
        (
            {"memory": "8Gi"},
            "creating team geo needs --cpu: the team's share of the cluster",
            "for example: jkctl admin team create geo --cpu 64 --memory 256Gi --gpu 4",
        ),
        (
            {"cpu": "4", "memory": "8Gi", "members": ["alice,,bob"]},
            "--members has an empty name in 'alice,,bob'",
            "separate names with commas and nothing else: --members alice,bob",
        ),
    ],
)
def test_bad_options_name_the_option_and_the_syntax(
    options: dict[str, object], message: str, hint: str
) -> None:
    error = refused(**options)
    assert (error.message, error.hint) == (message, hint)
    assert error.exit_code == 2


def test_team_names_are_namespace_names() -> None:
    error = refused("Geo_Team", cpu="1", memory="1Gi")
    assert error.message == "'Geo_Team' cannot be a team name: it becomes the team's namespace name"
    assert error.hint is not None and "lower-case letters" in error.hint
