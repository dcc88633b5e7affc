"""Fake builder and exporter executables for the image tests.

Each fake is a small POSIX sh script put on a PATH of the test's own: it
appends its arguments (and BUILDKIT_PROGRESS) to a log, prints a canned
build or push transcript and exits with the code it was given. The PATH
holds only the fakes plus /usr/bin and /bin, so a real docker elsewhere is
never found by accident.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA = Path(__file__).parent / "data"

PODMAN_SUCCESS = """\
STEP 1/9: FROM docker.io/mambaorg/micromamba:2.0.5
STEP 2/9: ARG JKCTL_ENV_NAME=geo
STEP 3/9: USER root
STEP 4/9: RUN usermod --uid 1000 "$MAMBA_USER"
--> 3c1a2b
STEP 5/9: COPY --chown=1000:1000 environment.yml /tmp/environment.yml
--> 4d2b3c
STEP 6/9: RUN PIP_NO_CACHE_DIR=1 micromamba create --yes --name "geo"
Transaction
  + python 3.12.7 conda-forge
  + ipykernel 6.29.5 conda-forge
Transaction finished
--> 5e3c4d
STEP 7/9: ENV ENV_NAME=geo
STEP 8/9: WORKDIR /home/mambauser
STEP 9/9: USER 1000:1000
COMMIT registry.example.com/team/geo:1
--> 6f4d5e
Successfully tagged registry.example.com/team/geo:1
"""

BUILDKIT_FAILURE = """\
#0 building with "default" instance using docker driver
#1 [internal] load build definition from Dockerfile
#1 transferring dockerfile: 2.31kB done
#1 DONE 0.0s
#5 [2/4] RUN usermod --uid 1000 "$MAMBA_USER"
#6 [3/4] COPY --chown=1000:1000 environment.yml /tmp/environment.yml
#5 0.210 usermod: no changes to unrelated-step-output
#5 DONE 0.4s
#6 DONE 0.1s
#7 [4/4] RUN PIP_NO_CACHE_DIR=1 micromamba create --yes --name "geo" --file /tmp/environment.yml
#7 1.204 error    libmamba Could not solve for environment specs
#7 1.205     The following package could not be installed
#7 1.205     └─ gdal >=99 does not exist (perhaps a typo or a missing channel).
#7 ERROR: process "/usr/local/bin/_dockerfile_shell.sh micromamba create" did not complete \
successfully: exit code: 1
------
 > [4/4] RUN PIP_NO_CACHE_DIR=1 micromamba create:
------
ERROR: failed to solve: process "/usr/local/bin/_dockerfile_shell.sh" did not complete \
successfully: exit code: 1
"""

PUSH_SUCCESS = """\
The push refers to repository [registry.example.com/team/geo]
5f70bf18a086: Pushed
1: digest: sha256:0123 size: 1234
"""

PUSH_REFUSED = """\
The push refers to repository [registry.example.com/team/geo]
5f70bf18a086: Preparing
unauthorized: authentication required
"""


def fake_path(bin_dir: Path) -> str:
    """A PATH with the fakes first and nothing from /usr/local (where a real docker lives)."""
    return os.pathsep.join([str(bin_dir), "/usr/bin", "/bin"])


def fake_builder(
    bin_dir: Path,
    name: str,
    *,
    build_output: str = PODMAN_SUCCESS,
    build_exit: int = 0,
    push_output: str = PUSH_SUCCESS,
    push_exit: int = 0,
) -> Path:
    """Install a fake `name` (docker, podman, buildah) in bin_dir; return its argument log."""
    log = bin_dir / f"{name}.log"
    script = f"""#!/bin/sh
echo "$* BUILDKIT_PROGRESS=$BUILDKIT_PROGRESS" >> '{log}'
case "$1" in
build|bud)
cat <<'JKCTL_FAKE_OUTPUT'
{build_output.rstrip()}
JKCTL_FAKE_OUTPUT
exit {build_exit}
;;
push)
cat <<'JKCTL_FAKE_OUTPUT'
{push_output.rstrip()}
JKCTL_FAKE_OUTPUT
exit {push_exit}
;;
esac
echo "fake {name}: unexpected arguments $*" >&2
exit 64
"""
    _install(bin_dir / name, script)
    return log


def fake_hanging_builder(bin_dir: Path, name: str) -> Path:
    """A builder that prints one step, records its pid, then runs until killed."""
    pid_file = bin_dir / f"{name}.pid"
    _install(
        bin_dir / name,
        f"""#!/bin/sh
echo $$ > '{pid_file}'
echo "STEP 1/2: FROM docker.io/mambaorg/micromamba:2.0.5"
exec sleep 600
""",
    )
    return pid_file


def fake_exporter(
    bin_dir: Path, name: str, *, output: str, stderr: str = "", code: int = 0
) -> Path:
    """Install a fake conda or micromamba whose `env export` prints `output`."""
    log = bin_dir / f"{name}.log"
    _install(
        bin_dir / name,
        f"""#!/bin/sh
echo "$*" >> '{log}'
cat <<'JKCTL_FAKE_OUTPUT'
{output.rstrip()}
JKCTL_FAKE_OUTPUT
cat >&2 <<'JKCTL_FAKE_ERROR'
{stderr.rstrip()}
JKCTL_FAKE_ERROR
exit {code}
""",
    )
    return log


def _install(path: Path, script: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script, encoding="utf-8")
    path.chmod(0o755)
