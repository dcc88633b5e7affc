"""Stands in for /kaniko/executor in kubesim, whose "images" all run on the host's Python.

It takes the real executor's arguments and checks what the Job handed it:
the context tarball at the ``tar://`` path (from the mounted ConfigMap), the
Dockerfile inside it, and, when pushing, the registry login mounted at
/kaniko/.docker/config.json. Then it prints Kaniko's text-format log: one
``level=info msg="INSTRUCTION"`` per instruction after FROM, with some output
for RUN steps, and exits 0. The ``micromamba create`` step fails (exit 1,
with micromamba's error, as a real build does) when the environment file asks
for a package named ``does-not-exist``.

Run as ``python fake_kaniko.py ARGS...``: the test sets the Job's command to
that instead of ``/kaniko/executor``; everything else in the Job is as built.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tarfile
from pathlib import Path


def log(level: str, message: str) -> None:
    quoted = message.replace("\\", "\\\\").replace('"', '\\"')
    print(f'level={level} msg="{quoted}"', flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--context", required=True)
    parser.add_argument("--dockerfile", required=True)
    parser.add_argument("--destination")
    parser.add_argument("--no-push", action="store_true")
    parser.add_argument("--log-format", choices=["text", "color", "json"])
    parser.add_argument("--log-timestamp")
    parser.add_argument("--custom-platform")
    args = parser.parse_args()
    if not args.context.startswith("tar://"):
        log("fatal", f"unexpected context {args.context}")
        return 2
    with tarfile.open(args.context.removeprefix("tar://")) as archive:
        files = {
            member.name: archive.extractfile(member).read().decode(errors="replace")  # type: ignore[union-attr]
            for member in archive.getmembers()
            if member.isfile()
        }
    if args.dockerfile not in files:
        log("fatal", f"Dockerfile {args.dockerfile} is not in the context: {sorted(files)}")
        return 1
    if not args.no_push:
        config = Path("/kaniko/.docker/config.json")
        if not args.destination or "auths" not in json.loads(config.read_text()):
            log("fatal", "no destination or no registry login")
            return 1
    environment = "".join(text for name, text in files.items() if name.startswith("environment"))
    text = re.sub(r"\\\n", " ", files[args.dockerfile])
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    log("info", "Retrieving image manifest docker.io/mambaorg/micromamba:2.0.5")
    started = False
    for line in lines:
        if line.split()[0].upper() == "FROM":
            started = True
            continue
        if not started:
            continue
        log("info", line.strip())
        if line.startswith("RUN"):
            log("info", f"Running: [/bin/sh -c {line[4:40]}]")
            if "micromamba create" in line and "does-not-exist" in environment:
                print("error    libmamba Could not solve for environment specs", flush=True)
                print("    └─ does-not-exist does not exist (perhaps a typo).", flush=True)
                log(
                    "error",
                    "error building image: error building stage: failed to execute command: "
                    "waiting for process to exit: exit status 1",
                )
                return 1
            print(f"output of {line[4:30]}", flush=True)
            log("info", "Taking snapshot of full filesystem...")
    if args.destination and not args.no_push:
        log("info", f"Pushing image to {args.destination}")
        log("info", f"Pushed {args.destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
