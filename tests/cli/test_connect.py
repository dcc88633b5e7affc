"""`jkctl connect`, `status` and `disconnect` from the command line, as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import LAB_LINE, isolated_env


def jkctl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jkctl", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=90,
        check=False,
    )


def answers(url: str, token: str) -> bool:
    request = urllib.request.Request(url + "/api", headers={"Authorization": f"token {token}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return bool(response.status == 200)
    except urllib.error.URLError:
        return False


@pytest.fixture
def env(tmp_path: Path) -> Iterator[dict[str, str]]:
    environment = isolated_env(tmp_path)
    yield environment
    # Leave no daemon behind, whatever the test did.
    jkctl(environment, "disconnect", "--stop-kernels")


def test_connect_starts_a_daemon_that_answers_and_disconnect_stops_it(
    env: dict[str, str],
) -> None:
    started = jkctl(env, "connect")
    assert started.returncode == 0, started.stderr
    lines = started.stdout.splitlines()
    assert len(lines) == 1
    match = LAB_LINE.match(lines[0])
    assert match, lines
    url, token = match[1], match[2]
    assert url.startswith("http://127.0.0.1:")
    assert "local backend" in started.stderr
    assert "no kubeconfig found" in started.stderr
    assert answers(url, token)

    state = Path(env["JKCTL_STATE_DIR"])
    assert (state / "token").stat().st_mode & 0o777 == 0o600
    record = json.loads((state / "daemon.json").read_text())
    assert record["url"] == url
    assert record["backend"] == "local"
    assert record["context"] is None
    assert record["namespace"] is None
    assert (state / "daemon.pid").read_text().strip() == str(record["pid"])

    status = jkctl(env, "status", "-o", "json")
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    assert report["daemon"]["pid"] == record["pid"]
    assert report["daemon"]["url"] == url
    assert report["daemon"]["backend"] == "local"
    assert report["daemon"]["uptime_seconds"] >= 0
    assert report["kernels"] == {"total": 0, "by_state": {}}

    again = jkctl(env, "connect")
    assert again.returncode == 0, again.stderr
    assert again.stdout == started.stdout
    assert "reusing the daemon" in again.stderr

    stopped = jkctl(env, "disconnect")
    assert stopped.returncode == 0, stopped.stderr
    assert f"stopped the daemon at {url}" in stopped.stderr
    assert not answers(url, token)
    assert not (state / "daemon.json").exists()

    status = jkctl(env, "status", "-o", "json")
    assert json.loads(status.stdout)["daemon"] is None
    assert "not running" in jkctl(env, "status").stdout
    assert "no daemon is running" in jkctl(env, "disconnect").stderr


def test_disconnect_says_local_kernels_stop_with_the_daemon(env: dict[str, str]) -> None:
    started = jkctl(env, "connect")
    assert started.returncode == 0, started.stderr
    match = LAB_LINE.match(started.stdout.strip())
    assert match
    request = urllib.request.Request(
        match[1] + "/api/kernels",
        data=b'{"name": "python3"}',
        method="POST",
        headers={"Authorization": f"token {match[2]}"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 201
    text = jkctl(env, "status")
    assert "1 (1 idle)" in text.stdout
    stopped = jkctl(env, "disconnect")
    assert stopped.returncode == 0, stopped.stderr
    assert "its kernel (local) stopped with it" in stopped.stderr
    connection_files = list((Path(env["JKCTL_STATE_DIR"]) / "runtime").iterdir())
    assert connection_files == []


def test_a_kubeconfig_selects_the_kubernetes_backend(env: dict[str, str], tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    result = jkctl({**env, "KUBECONFIG": str(kubeconfig)}, "connect")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert f"error: the kubeconfig {kubeconfig} defines no contexts" in result.stderr
    assert jkctl(env, "status", "-o", "json").stdout.count('"daemon": null') == 1


def test_lab_without_jupyterlab_says_how_to_get_it(env: dict[str, str]) -> None:
    result = jkctl(env, "connect", "--lab")
    if result.returncode == 0:  # pragma: no cover - only where jupyterlab is installed
        pytest.skip("jupyterlab is installed here")
    assert LAB_LINE.match(result.stdout.strip())
    assert "JupyterLab is not installed" in result.stderr
    assert "pip install jupyterlab" in result.stderr


def test_settings_come_from_the_environment(env: dict[str, str]) -> None:
    result = jkctl({**env, "JKCTL_PORT": "not-a-port"}, "connect")
    assert result.returncode == 2
    assert "JKCTL_PORT" in result.stderr
    assert "Traceback" not in result.stderr


HELP_PROBE = """
import sys
import jkctl.cli.main as cli
sys.argv = ["jkctl", "--help"]
try:
    cli.main()
except SystemExit:
    pass
heavy = ("aiohttp", "zmq", "jupyter_client", "kubernetes", "yaml")
print([name for name in heavy if name in sys.modules], file=sys.stderr)
"""


def test_help_imports_nothing_heavy(env: dict[str, str]) -> None:
    probe = HELP_PROBE
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=False
    )
    assert result.stderr.strip().splitlines()[-1] == "[]"
    assert "connect" in result.stdout
