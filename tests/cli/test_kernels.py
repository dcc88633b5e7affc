"""`jkctl kernels` and `jkctl status` as a user reads them: table columns, JSON shape, errors.

One namespace and one daemon (started by `jkctl connect`) for the module,
with two kernels in it; the last tests stop the daemon and read the same
kernels straight from the cluster, then stop them there.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
import yaml

from tests.cli.test_connect import jkctl
from tests.cli.test_connect_kubernetes import in_namespace, post
from tests.kernel_client import KernelClient
from tests.kube_users import Namespace, jkctl_namespace
from tests.kubesim.fixture import Kubesim
from tests.processes import LAB_LINE, isolated_env

pytestmark = pytest.mark.kubesim

COLUMNS = [
    "ID",
    "KERNELSPEC",
    "STATE",
    "POD",
    "NODE",
    "AGE",
    "LAST ACTIVITY",
    "CONN",
    "CPU",
    "MEMORY",
    "GPU",
]
LISTING_KEYS = {"source", "backend", "context", "namespace", "kernels", "team", "notes"}
ROW_KEYS = {
    "id",
    "kernelspec",
    "state",
    "reason",
    "backend",
    "namespace",
    "pod",
    "node",
    "phase",
    "created",
    "last_activity",
    "connections",
    "requests",
    "image",
    "owner",
    "pid",
    "attached",
}


class Setup:
    def __init__(
        self,
        env: dict[str, str],
        namespace: Namespace,
        kernel_ids: list[str],
        *,
        url: str,
        token: str,
    ) -> None:
        self.env = env
        self.namespace = namespace
        self.kernel_ids = kernel_ids
        self.url, self.token = url, token

    def run(self, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jkctl", *args],
            capture_output=True,
            text=True,
            env=self.env,
            input=stdin,
            timeout=90,
            check=False,
        )


@pytest.fixture(scope="module")
def setup(kubesim: Kubesim, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    env = isolated_env(tmp_path_factory.mktemp("cli-kernels"))
    namespace = jkctl_namespace(kubesim, "cli-kernels")
    env["KUBECONFIG"] = str(in_namespace(namespace.kubeconfig, namespace.name))
    started = jkctl(env, "connect")
    assert started.returncode == 0, started.stderr
    match = LAB_LINE.match(started.stdout.strip())
    assert match, started.stdout
    ids = [post(match[1], match[2], "/api/kernels", {"name": "python3"})["id"] for _ in range(2)]
    yield Setup(env, namespace, sorted(ids), url=match[1], token=match[2])
    jkctl(env, "disconnect", "--stop-kernels")
    namespace.wait_empty()


def table_rows(stdout: str) -> tuple[str, list[str]]:
    header, *rows = stdout.splitlines()
    return header, rows


def test_list_is_a_table_with_the_columns_users_read(setup: Setup) -> None:
    listed = setup.run("kernels", "list")
    assert listed.returncode == 0, listed.stderr
    assert "jkctl: from the daemon at http://127.0.0.1:" in listed.stderr
    assert f"namespace {setup.namespace.name}" in listed.stderr
    header, rows = table_rows(listed.stdout)
    assert header.split() == " ".join(COLUMNS).split()
    assert len(rows) == 2
    for kernel_id in setup.kernel_ids:
        (row,) = [r for r in rows if r.startswith(kernel_id[:8] + " ")]
        cells = row.split()
        assert cells[0] == kernel_id[:8]  # ids are shown short
        assert cells[1:3] == ["python3", "idle"]
        assert cells[3] == setup.namespace.pod_of(kernel_id).metadata.name


def test_list_as_json_and_yaml_for_scripts(setup: Setup) -> None:
    listed = setup.run("kernels", "list", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    listing = json.loads(listed.stdout)
    assert set(listing) == LISTING_KEYS
    assert listing["source"] == "daemon"
    assert (listing["backend"], listing["namespace"]) == ("kubernetes", setup.namespace.name)
    assert sorted(row["id"] for row in listing["kernels"]) == setup.kernel_ids
    for row in listing["kernels"]:
        assert set(row) >= ROW_KEYS, ROW_KEYS - set(row)
        assert (row["state"], row["attached"], row["connections"]) == ("idle", True, 0)
        assert row["drops"] == 0  # the daemon's connection to it never dropped
        assert set(row["requests"]) == {"cpu", "memory", "gpu"}
    as_yaml = yaml.safe_load(setup.run("kernels", "list", "-o", "yaml").stdout)
    assert sorted(row["id"] for row in as_yaml["kernels"]) == setup.kernel_ids


def test_describe_takes_a_prefix_and_says_where_the_kernel_runs(setup: Setup) -> None:
    kernel_id = setup.kernel_ids[0]
    described = setup.run("kernels", "describe", kernel_id[:6])
    assert described.returncode == 0, described.stderr
    fields = dict(
        line.split(":", 1) for line in described.stdout.splitlines() if not line.startswith(" ")
    )
    assert fields["Kernel"].strip() == kernel_id
    assert fields["State"].strip() == "idle"
    assert fields["Pod"].strip() == setup.namespace.pod_of(kernel_id).metadata.name
    assert fields["Lease"].strip().startswith("2h 0m, renewed 20")
    assert "Events" in fields
    as_json = json.loads(setup.run("kernels", "describe", kernel_id, "-o", "json").stdout)
    assert {"limits", "lease", "events", "log", "notes", "cull_at"} <= set(as_json)
    assert as_json["lease"]["seconds"] == 7200


async def say_on_stderr(setup: Setup, kernel_id: str, text: str) -> None:
    """Have the kernel write ``text`` to its process's stderr: its container's log."""
    async with aiohttp.ClientSession() as http:
        kernel = await KernelClient.connect(http, setup.url, kernel_id, token=setup.token)
        code = f"import sys; print({text!r}, file=sys.__stderr__, flush=True)"
        assert (await kernel.execute(code)).reply.content["status"] == "ok"
        await kernel.close()


async def test_logs_print_the_kernels_output(setup: Setup) -> None:
    kernel_id = setup.kernel_ids[1]
    await say_on_stderr(setup, kernel_id, "a line for the log")
    deadline = time.monotonic() + 30
    while "a line for the log" not in (logs := setup.run("kernels", "logs", kernel_id[:8])).stdout:
        assert logs.returncode == 0, logs.stderr
        assert time.monotonic() < deadline, logs.stdout
        await asyncio.sleep(0.1)
    assert setup.run("kernels", "logs", kernel_id[:8], "--tail", "1").stdout == (
        "a line for the log\n"
    )


def test_unknown_and_empty_ids_are_one_sentence_with_a_hint(setup: Setup) -> None:
    unknown = setup.run("kernels", "describe", "zzzz")
    assert unknown.returncode == 2
    assert unknown.stderr.splitlines()[-3:] == [
        "error: No kernel served by this daemon or found in the cluster has an id starting "
        "with 'zzzz'.",
        "hint: `jkctl kernels list` shows the kernels and their ids.",
        "(kernel-not-found)",
    ]
    assert "Traceback" not in unknown.stderr
    empty = setup.run("kernels", "stop", "")
    assert empty.returncode == 2
    assert "error: A kernel id cannot be empty." in empty.stderr


def test_stop_says_what_it_needs(setup: Setup) -> None:
    nothing = setup.run("kernels", "stop")
    assert nothing.returncode == 2
    assert "error: Say which kernels to stop." in nothing.stderr
    assert "hint: Give their ids, --all, or --idle DURATION." in nothing.stderr
    both = setup.run("kernels", "stop", "--all", setup.kernel_ids[0])
    assert both.returncode == 2
    assert "error: Give kernel ids or --all, not both." in both.stderr
    bad = setup.run("kernels", "stop", "--idle", "soon")
    assert bad.returncode == 2
    assert "error: --idle: 'soon' is not a duration" in bad.stderr
    assert "hint: Write e.g. --idle 2h or --idle 30m." in bad.stderr


def test_stop_asks_before_stopping_several(setup: Setup) -> None:
    declined = setup.run("kernels", "stop", "--all", stdin="n\n")
    assert declined.returncode == 130
    assert "Stop these 2 kernels? [y/N]: Aborted." in declined.stderr
    for kernel_id in setup.kernel_ids:
        assert f"  {kernel_id[:8]}  python3" in declined.stderr
    assert declined.stdout == ""
    assert len(setup.namespace.pods()) == 2
    # Idle for a day: none of these.
    idle = setup.run("kernels", "stop", "--idle", "1d", "--yes")
    assert idle.returncode == 0, idle.stderr
    assert "jkctl: no kernels to stop (none idle for 1d)." in idle.stderr


def test_status_as_text_and_as_one_object(setup: Setup) -> None:
    text = setup.run("status")
    assert text.returncode == 0, text.stderr
    labels = [line.split()[0] for line in text.stdout.splitlines()]
    assert labels == [
        "daemon",
        "url",
        "backend",
        "context",
        "namespace",
        "kernels",
        "culling",
        "lease",
        "log",
    ]
    assert "kernels   2 (2 idle)" in text.stdout
    report = json.loads(setup.run("status", "-o", "json").stdout)
    assert {"pid", "url", "uptime_seconds", "backend", "log_file"} <= set(report["daemon"])
    assert report["namespace"] == setup.namespace.name
    assert report["kernels"] == {"total": 2, "by_state": {"idle": 2}}


def test_without_a_daemon_the_cluster_answers_and_stop_works_there(setup: Setup) -> None:
    stopped = setup.run("disconnect")
    assert stopped.returncode == 0, stopped.stderr
    status = json.loads(setup.run("status", "-o", "json").stdout)
    assert status["daemon"] is None

    listed = setup.run("kernels", "list")
    assert listed.returncode == 0, listed.stderr
    assert "jkctl: no daemon is running; read from the cluster" in listed.stderr
    assert "connections and idle/busy are known only to a daemon" in listed.stderr
    header, rows = table_rows(listed.stdout)
    assert header.split() == " ".join(COLUMNS).split()
    assert sorted(row.split()[0] for row in rows) == [k[:8] for k in setup.kernel_ids]
    for row in rows:
        cells = row.split()
        assert cells[2] == "running"
        assert cells[7 + 1] == "-"  # CONN, after the two-word LAST ACTIVITY ("Ns ago")
    listing = json.loads(setup.run("kernels", "list", "-o", "json").stdout)
    assert listing["source"] == "cluster"
    assert {row["connections"] for row in listing["kernels"]} == {None}

    gone = setup.run("kernels", "stop", setup.kernel_ids[0][:8])
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout == f"stopped {setup.kernel_ids[0][:8]}\n"
    rest = setup.run("kernels", "stop", "--all", "--yes")
    assert rest.returncode == 0, rest.stderr
    assert rest.stdout == f"stopped {setup.kernel_ids[1][:8]}\n"
    setup.namespace.wait_empty()


def test_with_nothing_configured_there_are_no_kernels_and_no_namespaces_to_suggest(
    tmp_path: Path,
) -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "jkctl", "kernels", "list"],
        capture_output=True,
        text=True,
        env=isolated_env(tmp_path),
        timeout=60,
        check=False,
    )
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout == ""
    assert listed.stderr.splitlines()[-1] == "jkctl: no kernels."
