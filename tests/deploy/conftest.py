"""An offline bundle of this checkout, built once, and trees the installer stages into."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
INSTALL = "deploy/install.sh"


def run(
    command: list[str], *, env: dict[str, str] | None = None, check: bool = True, cwd: Path = ROOT
) -> subprocess.CompletedProcess[str]:
    """Run a command; fail with its output when `check` and it fails."""
    done = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return done


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`deploy/build-bundle --platform native --no-tar`: the tree the installer runs from."""
    out = tmp_path_factory.mktemp("bundle")
    done = run([str(ROOT / "deploy/build-bundle"), "--platform", "native", "--no-tar",
                "--output", str(out)])  # fmt: skip
    path = Path(done.stdout.strip().splitlines()[-1])
    assert (path / "wheels").is_dir(), done.stdout
    assert (path / "RELEASE").is_file(), done.stdout
    return path


@pytest.fixture(scope="session")
def _installed_once(bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("installed")
    install(bundle, root)
    return root


@pytest.fixture
def installed(_installed_once: Path, staged: Path) -> Path:
    """`staged` holding a default install, copied from one made once (each is ~6 s of pip):
    for tests of what later runs do to an installed tree, not of the first install itself."""
    # cp -a: owners and modes as the installer set them, symlinks as links.
    run(["cp", "-a", f"{_installed_once}/.", str(staged)], cwd=staged)
    return staged


@pytest.fixture
def staged(tmp_path: Path) -> Iterator[Path]:
    """An empty folder to stage into (`--root`)."""
    root = tmp_path / "root"
    root.mkdir()
    yield root
    shutil.rmtree(root, ignore_errors=True)


def install(bundle: Path, root: Path, *args: str, env: dict[str, str] | None = None,
            check: bool = True) -> subprocess.CompletedProcess[str]:  # fmt: skip
    """The bundle's installer staging into `root`."""
    return run([str(bundle / INSTALL), "--root", str(root), *args], env=env, check=check,
               cwd=bundle)  # fmt: skip


def snapshot(root: Path) -> dict[str, tuple[str, ...]]:
    """Every path under `root` with its type, mode, owner, link target and content digest."""
    import hashlib

    tree: dict[str, tuple[str, ...]] = {}
    for path in sorted(root.rglob("*")):
        stat = path.lstat()
        rel = str(path.relative_to(root))
        if path.is_symlink():
            tree[rel] = ("link", os.readlink(path))
        elif path.is_dir():
            tree[rel] = ("dir", oct(stat.st_mode & 0o7777), f"{stat.st_uid}:{stat.st_gid}")
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            tree[rel] = ("file", oct(stat.st_mode & 0o7777), f"{stat.st_uid}:{stat.st_gid}", digest)
    return tree
