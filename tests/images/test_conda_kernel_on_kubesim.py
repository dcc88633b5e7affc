"""Issue 5's end-to-end promise: build a conda kernel image, register it, run it as a pod.

The build runs a fake builder (no container engine here); kubesim stands in
for the built image by giving its containers an /opt/conda/envs/geo that is
this test's own Python environment. The kernelspec `--register` wrote is
then launched by a daemon on the Kubernetes backend and runs code in that
environment's interpreter, as the kernelspec's argv says.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import aiohttp
import pytest

from tests.images.fakes import DATA, fake_builder, fake_path
from tests.kernel_client import KernelClient
from tests.kube_users import jkctl_namespace
from tests.kubesim.fixture import Kubesim
from tests.processes import isolated_env, start_kube_daemon

pytestmark = pytest.mark.kubesim


async def run_code(url: str, token: str, kernel_id: str, code: str) -> str:
    async with aiohttp.ClientSession() as http:
        kernel = await KernelClient.connect(http, url, kernel_id, token=token)
        try:
            return (await kernel.execute(code)).stdout
        finally:
            await kernel.close()


def test_a_registered_conda_kernelspec_runs_on_the_cluster(
    kubesim: Kubesim, tmp_path: Path
) -> None:
    # A tag of this test's own: what kubesim's image carries is per image name.
    image = f"registry.example.com/team/geo-{uuid.uuid4().hex[:8]}:1"
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake_builder(bin_dir, "podman")
    env = isolated_env(tmp_path) | {"PATH": fake_path(bin_dir)}
    built = subprocess.run(
        [
            *(sys.executable, "-m", "jkctl", "build-kernel-image", "conda-env"),
            *(str(DATA / "with_channels.yml"), "--tag", image, "--push", "--register"),
        ],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=60,
    )
    assert built.returncode == 0, built.stderr
    assert "registered kernelspec conda-geo" in built.stderr

    kubesim.provide_image_paths(image, {"/opt/conda/envs/geo": sys.prefix})
    namespace = jkctl_namespace(kubesim, "conda")
    daemon = start_kube_daemon(tmp_path, namespace)
    try:
        status, specs = daemon.request("GET", "/api/kernelspecs")
        assert "conda-geo" in specs["kernelspecs"]
        status, model = daemon.request("POST", "/api/kernels", {"name": "conda-geo"})
        assert status == 201, model
        code = "import sys; print(sys.prefix, sys.executable)"
        output = asyncio.run(run_code(daemon.url, daemon.token, model["id"], code))
        assert output.split() == [
            "/opt/conda/envs/geo",
            "/opt/conda/envs/geo/bin/python",
        ]
        status, _ = daemon.request("DELETE", f"/api/kernels/{model['id']}")
        assert status == 204
    finally:
        daemon.stop(stop_kernels=True)
    assert namespace.leftovers() == []
