from __future__ import annotations

from pathlib import Path

from jkctl import paths


def test_override_beats_xdg_beats_home() -> None:
    env = {"JKCTL_STATE_DIR": "/tmp/s", "XDG_STATE_HOME": "/tmp/x"}
    assert paths.state_dir(env) == Path("/tmp/s")
    assert paths.state_dir({"XDG_STATE_HOME": "/tmp/x"}) == Path("/tmp/x/jkctl")
    assert paths.state_dir({}) == Path.home() / ".local/state/jkctl"


def test_user_kernels_live_under_data() -> None:
    assert paths.user_kernels_dir({"JKCTL_DATA_DIR": "/d"}) == Path("/d/kernels")
    assert paths.user_kernels_dir({"XDG_DATA_HOME": "/x"}) == Path("/x/jkctl/kernels")


def test_bundled_templates_are_found() -> None:
    assert (paths.bundled("kernel-templates") / "python3" / "kernel.json").is_file()
