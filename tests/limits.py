"""A full or read-only disk for tests: a small tmpfs mounted in a private mount namespace.

``unshare --map-root-user --mount`` gives the command its own mounts (nothing outside sees
them, and they vanish with it), so this needs no root, only user namespaces; the tests
that use it skip where those are not allowed.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path

import pytest


def run_on_own_disk(mountpoint: Path, options: str, command: str, timeout: float = 300,
                    env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the shell ``command`` with a tmpfs mounted (``-o options``, e.g. ``size=2m`` or
    ``ro``) at ``mountpoint``; the mount disappears with the command."""
    if not shutil.which("unshare"):
        pytest.skip("unshare (util-linux) is not installed")
    mountpoint.mkdir(parents=True, exist_ok=True)
    mount = f"mount -t tmpfs -o {options} tmpfs {shlex.quote(str(mountpoint))}"
    probe = subprocess.run(["unshare", "--map-root-user", "--mount", "sh", "-c", mount],
                           capture_output=True, text=True)
    if probe.returncode:
        pytest.skip(f"cannot mount a private tmpfs here: {probe.stderr.strip()}")
    return subprocess.run(["unshare", "--map-root-user", "--mount", "sh", "-c", f"{mount} && {command}"],
                          capture_output=True, text=True, timeout=timeout, env=env)
