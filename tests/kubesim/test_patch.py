"""Merge, strategic merge and JSON patches, and how they fail."""

from __future__ import annotations

import pytest

from tests.kubesim.patch import PatchError, json_patch, merge_patch, strategic_merge_patch

POD = {
    "metadata": {"labels": {"a": "1", "b": "2"}, "finalizers": ["x"]},
    "spec": {
        "containers": [
            {"name": "main", "image": "v1", "env": [{"name": "A", "value": "1"}]},
            {"name": "side", "image": "s1"},
        ]
    },
}


def test_merge_patch_merges_maps_deletes_nulls_and_replaces_lists() -> None:
    patched = merge_patch(
        POD, {"metadata": {"labels": {"a": None, "c": "3"}}, "spec": {"containers": []}}
    )
    assert patched["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert patched["spec"]["containers"] == []
    assert POD["metadata"]["labels"] == {"a": "1", "b": "2"}  # the input is untouched


def test_strategic_merge_patch_merges_lists_on_their_keys() -> None:
    patched = strategic_merge_patch(
        POD,
        {
            "metadata": {"finalizers": ["y", "x"]},
            "spec": {
                "containers": [
                    {"name": "main", "image": "v2", "env": [{"name": "B", "value": "2"}]},
                    {"name": "side", "$patch": "delete"},
                    {"name": "new", "image": "n1"},
                ]
            },
        },
    )
    assert patched["metadata"]["finalizers"] == ["x", "y"]
    containers = patched["spec"]["containers"]
    assert [c["name"] for c in containers] == ["main", "new"]
    assert containers[0]["image"] == "v2"
    assert containers[0]["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]


def test_strategic_merge_patch_directives() -> None:
    replaced = strategic_merge_patch(POD, {"metadata": {"labels": {"$patch": "replace", "z": "9"}}})
    assert replaced["metadata"]["labels"] == {"z": "9"}
    ordered = strategic_merge_patch(POD, {"$setElementOrder/containers": [{"name": "side"}]})
    assert ordered == POD
    with pytest.raises(PatchError):
        strategic_merge_patch(POD, {"spec": {"containers": [{"image": "no-name"}]}})


def test_json_patch_operations() -> None:
    patched = json_patch(
        POD,
        [
            {"op": "add", "path": "/metadata/annotations", "value": {"k": "v"}},
            {"op": "replace", "path": "/spec/containers/0/image", "value": "v3"},
            {"op": "remove", "path": "/metadata/labels/a"},
            {"op": "copy", "from": "/metadata/labels/b", "path": "/metadata/labels/c"},
            {"op": "move", "from": "/metadata/labels/b", "path": "/metadata/labels/d"},
            {"op": "add", "path": "/metadata/finalizers/-", "value": "y"},
            {"op": "test", "path": "/metadata/labels/c", "value": "2"},
        ],
    )
    assert patched["metadata"]["annotations"] == {"k": "v"}
    assert patched["metadata"]["labels"] == {"c": "2", "d": "2"}
    assert patched["metadata"]["finalizers"] == ["x", "y"]
    assert patched["spec"]["containers"][0]["image"] == "v3"


@pytest.mark.parametrize(
    "operations",
    [
        [{"op": "test", "path": "/metadata/labels/a", "value": "other"}],
        [{"op": "remove", "path": "/metadata/missing"}],
        [{"op": "replace", "path": "/spec/nothing/here", "value": 1}],
    ],
)
def test_json_patch_failures_are_unprocessable(operations: list[dict[str, object]]) -> None:
    with pytest.raises(PatchError) as raised:
        json_patch(POD, operations)
    assert raised.value.unprocessable
