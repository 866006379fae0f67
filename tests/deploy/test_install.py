"""deploy/install.sh staging into a folder (--root): the tree it lays out, idempotence, dry run,
uninstall, upgrade with rollback, and the arguments it refuses."""

from __future__ import annotations

import fcntl
import os
import shutil
import stat
from pathlib import Path

import pytest

from tests.deploy.conftest import ROOT, install, run, snapshot

UNIT = "etc/systemd/system/unit-controller.service"
CONFIG = "etc/unit-controller/unit.toml"
NOT_ROOT = os.geteuid() != 0


def _passwd(root: Path) -> dict[str, list[str]]:
    lines = (root / "etc/passwd").read_text().splitlines()
    return {line.split(":")[0]: line.split(":") for line in lines}


def _members(root: Path, group: str) -> list[str]:
    for line in (root / "etc/group").read_text().splitlines():
        fields = line.split(":")
        if fields[0] == group:
            return fields[3].split(",") if fields[3] else []
    raise AssertionError(f"no group {group}")


def test_lays_out_the_unit_and_a_second_run_changes_nothing(bundle: Path, staged: Path) -> None:
    first = install(bundle, staged)
    assert "installed" in first.stdout
    tree = snapshot(staged)
    for path in (UNIT, CONFIG, "etc/sysusers.d/unit-controller.conf",
                 "etc/udev/rules.d/70-unit-controller.rules",
                 "etc/modules-load.d/unit-controller.conf",
                 "etc/systemd/journald.conf.d/50-unit-controller.conf",
                 "etc/systemd/system/serial-getty@ttyS0.service.d/unit-console.conf",
                 "etc/systemd/system/multi-user.target.wants/unit-controller.service",
                 "etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service",
                 "opt/unit-controller/current/bin/unit-controller"):  # fmt: skip
        assert (staged / path).exists() or (staged / path).is_symlink(), path
    fieldtech = _passwd(staged)["fieldtech"]
    assert fieldtech[6] == "/usr/local/bin/unit-console"
    assert (staged / "usr/local/bin/unit-console").resolve().name == "unit-console"
    assert "fieldtech" in _members(staged, "unit-console")
    assert "unit-controller" in _members(staged, "dialout")
    assert _passwd(staged)["unit-controller"][6] == "/usr/sbin/nologin"
    # The config: root writes it, the daemon's group reads it, nobody else.
    assert stat.S_IMODE((staged / CONFIG).stat().st_mode) == 0o640
    assert stat.S_IMODE((staged / "etc/unit-controller").stat().st_mode) == 0o750
    assert (staged / CONFIG).read_text() == (ROOT / "deploy/examples/unit.toml").read_text()

    second = install(bundle, staged)
    assert "nothing to change" in second.stdout, second.stdout
    assert snapshot(staged) == tree


def test_the_staged_config_and_release_work(bundle: Path, staged: Path) -> None:
    install(bundle, staged, "--unit-id", "unit-07")
    binary = staged / "opt/unit-controller/current/bin/unit-controller"
    done = run([str(binary), "check-config", str(staged / CONFIG)], cwd=Path("/"))
    assert done.stdout.strip() == "ok"
    assert 'id = "unit-07"' in (staged / CONFIG).read_text()
    # Installed from the wheel, the recipes come with it (not from this checkout).
    recipes = run([str(binary), "recipes"], cwd=Path("/")).stdout.split()
    assert {"leach", "purify", "coprecipitation"} <= set(recipes)


def test_a_dry_run_writes_nothing(bundle: Path, installed: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    done = install(bundle, empty, "--dry-run")
    assert "would build release" in done.stdout
    assert "would install /" + UNIT in done.stdout
    assert list(empty.iterdir()) == []
    staged = installed
    tree = snapshot(staged)
    (staged / UNIT).write_text("[Unit]\nDescription=edited by hand\n")
    tree[UNIT] = snapshot(staged)[UNIT]
    again = install(bundle, staged, "--dry-run")
    assert "would install /" + UNIT in again.stdout
    assert snapshot(staged) == tree


def test_a_sites_config_and_udev_rules_are_kept(bundle: Path, installed: Path) -> None:
    staged = installed
    site = (staged / CONFIG).read_text().replace('id = "unit-01"', 'id = "north-3"')
    (staged / CONFIG).write_text(site)
    (staged / CONFIG).chmod(0o644)  # someone edited it carelessly
    rules = staged / "etc/udev/rules.d/70-unit-controller.rules"
    rules.write_text(rules.read_text().replace("SERIAL-OF-AT-101", "A10K9QZ1"))
    other = ROOT / "deploy/examples/sim.toml"
    done = install(bundle, staged, "--unit-id", "other", "--config", str(other))
    assert (staged / CONFIG).read_text() == site
    assert "A10K9QZ1" in rules.read_text()
    assert stat.S_IMODE((staged / CONFIG).stat().st_mode) == 0o640
    assert "its [unit] id stays (not --unit-id other)" in done.stdout
    # Said, not silently ignored.
    assert f"kept the site's /etc/unit-controller/unit.toml (not --config {other})" in done.stdout


def test_a_second_installer_on_the_same_tree_waits_its_turn(bundle: Path, staged: Path) -> None:
    held = os.open(staged, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a first install.sh running on it would hold it
        done = install(bundle, staged, check=False)
    finally:
        os.close(held)
    assert done.returncode == 1
    assert f"another install.sh is running on {staged}" in done.stderr
    assert list(staged.iterdir()) == []


def test_uninstall_keeps_config_and_state_and_purge_removes_them(
    bundle: Path, installed: Path
) -> None:
    staged = installed
    state = staged / "var/lib/unit-controller"
    state.mkdir(parents=True)
    (state / "journal.sqlite3").write_bytes(b"batches")
    install(bundle, staged, "--uninstall")
    for gone in (UNIT, "opt/unit-controller", "usr/local/bin/unit-console",
                 "etc/systemd/system/multi-user.target.wants/unit-controller.service",
                 "etc/systemd/system/getty.target.wants/serial-getty@ttyS0.service",
                 "etc/systemd/system/serial-getty@ttyS0.service.d"):  # fmt: skip
        assert not (staged / gone).exists(), gone
        assert not (staged / gone).is_symlink(), gone
    assert (staged / CONFIG).is_file()
    assert (state / "journal.sqlite3").read_bytes() == b"batches"
    assert "/usr/local/bin/unit-console" not in (staged / "etc/shells").read_text()
    # Installing again finds the site's config as it was.
    install(bundle, staged)
    install(bundle, staged, "--uninstall", "--purge")
    assert not (staged / "etc/unit-controller").exists()
    assert not state.exists()


def _release_copy(bundle: Path, tmp_path: Path, release: str) -> Path:
    other = tmp_path / release
    shutil.copytree(bundle, other, symlinks=True)
    (other / "RELEASE").write_text(release + "\n")
    # Its own service file, as a release that changes its hardening would ship.
    with (other / "systemd/unit-controller.service").open("a") as unit:
        unit.write(f"# {release}\n")
    return other


STAND_IN = """#!/bin/sh
# systemctl for the tests: a release named *broken* never gets READY.
echo "$@" >>"$LOG"
case "$1" in
    restart | is-active)
        case "$(readlink "$STAGED/opt/unit-controller/current")" in *broken*) exit 1 ;; esac ;;
    show) echo "${STATUS_TEXT:-}" ;;  # the daemon's last STATUS=, as `show -p StatusText`
esac
exit 0
"""


def _stand_in(staged: Path, tmp_path: Path) -> dict[str, str]:
    """The environment that makes the installer use the stand-in systemctl."""
    systemctl = tmp_path / "systemctl"
    systemctl.write_text(STAND_IN)
    systemctl.chmod(0o755)
    return {"SYSTEMCTL": str(systemctl), "STAGED": str(staged), "LOG": str(tmp_path / "log")}


def test_upgrade_switches_releases_rolls_back_when_not_ready_and_on_request(
    bundle: Path, staged: Path, tmp_path: Path
) -> None:
    install(bundle, staged, "--console-tty", "ttyAMA1")  # a site's choice, kept by upgrades
    current = staged / "opt/unit-controller/current"
    first = current.readlink().name
    env = _stand_in(staged, tmp_path)
    unit_file = staged / UNIT
    shipped = unit_file.read_text()

    newer = _release_copy(bundle, tmp_path, "9.9.9-good")
    refused = install(newer, staged, check=False)
    assert refused.returncode == 1
    assert "--upgrade" in refused.stderr

    # A release that never gets READY: back to the one before, and the upgrade fails.
    broken = _release_copy(bundle, tmp_path, "9.9.9-broken")
    failed = install(broken, staged, "--upgrade", env=env, check=False)
    assert failed.returncode == 1, failed.stdout
    assert "rolling back" in failed.stdout
    assert current.readlink().name == first
    assert unit_file.read_text() == shipped  # not the broken release's service file

    good = install(newer, staged, "--upgrade", env=env)
    assert "upgraded" in good.stdout
    assert current.readlink().name == "9.9.9-good"
    assert unit_file.read_text().endswith("# 9.9.9-good\n")
    assert (staged / "opt/unit-controller/previous").readlink().name == first
    assert (staged / CONFIG).read_text() == (ROOT / "deploy/examples/unit.toml").read_text()
    system = staged / "etc/systemd/system"
    assert (system / "getty.target.wants/serial-getty@ttyAMA1.service").is_symlink()
    assert not (system / "serial-getty@ttyS0.service.d").exists()
    # Only the current release and the one before are kept.
    kept = {p.name for p in (staged / "opt/unit-controller/releases").iterdir()}
    assert kept == {first, "9.9.9-good"}

    # A failed upgrade leaves the release to roll back to as it was, and drops itself.
    failed = install(broken, staged, "--upgrade", env=env, check=False)
    assert failed.returncode == 1, failed.stdout
    assert current.readlink().name == "9.9.9-good"
    assert (staged / "opt/unit-controller/previous").readlink().name == first
    kept = {p.name for p in (staged / "opt/unit-controller/releases").iterdir()}
    assert kept == {first, "9.9.9-good"}

    dry = install(newer, staged, "--rollback", "--dry-run", env=env)
    assert f"would roll back 9.9.9-good -> {first}" in dry.stdout
    assert "rolled back" not in dry.stdout
    assert current.readlink().name == "9.9.9-good"
    back = install(newer, staged, "--rollback", env=env)
    assert "rolled back" in back.stdout
    assert current.readlink().name == first
    assert unit_file.read_text() == shipped
    assert "restart unit-controller.service" in (tmp_path / "log").read_text()
    # A second one swaps them again, and says it goes forward.
    forward = install(newer, staged, "--rollback", env=env)
    assert "back to the newer release" in forward.stdout, forward.stdout
    assert current.readlink().name == "9.9.9-good"
    assert unit_file.read_text().endswith("# 9.9.9-good\n")


def test_upgrade_and_rollback_wait_for_a_batch_and_refuse_a_config_the_release_refuses(
    bundle: Path, installed: Path, tmp_path: Path
) -> None:
    current = installed / "opt/unit-controller/current"
    first = current.readlink().name
    env = _stand_in(installed, tmp_path)
    log = tmp_path / "log"
    newer = _release_copy(bundle, tmp_path, "9.9.9-good")
    running = {**env, "STATUS_TEXT": "EXECUTE coprecipitation heat"}

    # A restart now would abort the batch: refused, nothing switched, nothing restarted.
    refused = install(newer, installed, "--upgrade", env=running, check=False)
    assert refused.returncode == 1, refused.stdout
    assert "a batch is under way (EXECUTE)" in refused.stderr
    assert "--force" in refused.stderr
    assert current.readlink().name == first
    assert "restart" not in log.read_text()

    forced = install(newer, installed, "--upgrade", "--force", env=running)
    assert "--force: the restart aborts it" in forced.stdout
    assert current.readlink().name == "9.9.9-good"
    # A unit past its start limit would refuse even this start: the count is cleared first.
    calls = log.read_text().splitlines()
    assert calls.index("reset-failed unit-controller.service") < calls.index(
        "restart unit-controller.service"
    )

    held = install(newer, installed, "--rollback", env={**env, "STATUS_TEXT": "HELD leach"},
                   check=False)  # fmt: skip
    assert held.returncode == 1
    assert "a batch is under way (HELD)" in held.stderr
    assert current.readlink().name == "9.9.9-good"

    # A kept config the release to start refuses: said, and nothing changes.
    config = installed / CONFIG
    config.write_text(config.read_text().replace("scan_period_s = 0.1", "scan_period_s = 5"))
    unit_before = (installed / UNIT).read_text()
    bad = install(newer, installed, "--rollback", env=env, check=False)
    assert bad.returncode == 1
    assert f"release {first} refuses /etc/unit-controller/unit.toml" in bad.stderr
    assert "unit.scan_period_s" in bad.stderr
    assert current.readlink().name == "9.9.9-good"
    assert (installed / UNIT).read_text() == unit_before

    assert install(newer, installed, "--force", check=False).returncode == 2  # not an install's


def test_a_bundle_for_another_cpu_is_refused_before_anything_is_built(
    bundle: Path, staged: Path, tmp_path: Path
) -> None:
    other = tmp_path / "other-cpu"
    shutil.copytree(bundle, other, symlinks=True)
    (other / "PLATFORM").write_text("sparc64\n")
    refused = install(other, staged, check=False)
    assert refused.returncode == 1
    assert "this bundle is for sparc64, this machine's system is" in refused.stderr
    assert not any(staged.iterdir())
    # The bundle names this machine's CPU as the installer does (deploy/system-cpu).
    this_cpu = run([str(ROOT / "deploy/system-cpu")]).stdout.strip()
    assert (bundle / "PLATFORM").read_text().strip() == this_cpu
    assert f"this machine's system is {this_cpu}" in refused.stderr


def test_a_config_is_checked_before_it_is_installed_and_its_unit_id_set_however_spaced(
    bundle: Path, staged: Path, tmp_path: Path
) -> None:
    recipe = ROOT / "recipes/smoke.toml"  # a recipe, not a config
    done = install(bundle, staged, "--config", str(recipe), check=False)
    assert done.returncode == 1
    assert "is not a valid unit config" in done.stderr
    # Nothing of the system changed: no users, links or files; only the release, in its folder.
    top = {str(p.relative_to(staged)) for p in staged.glob("*/*/*")}
    assert top == {"opt/unit-controller/releases"}
    assert {p.name for p in staged.iterdir()} == {"opt"}
    example = (ROOT / "deploy/examples/unit.toml").read_text()
    assert 'id = "unit-01"' in example
    config = tmp_path / "site.toml"
    config.write_text(example.replace('id = "unit-01"', 'id="unit-01"'))
    dry = install(bundle, staged, "--dry-run", "--config", str(config), "--unit-id", "north-3")
    assert 'would set [unit] id = "north-3"' in dry.stdout
    install(bundle, staged, "--config", str(config), "--unit-id", "north-3")
    assert 'id = "north-3"' in (staged / CONFIG).read_text()
    assert "unit-01" not in (staged / CONFIG).read_text()


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--bogus"], "unknown argument: --bogus"),
        (["--purge"], "--purge goes with --uninstall"),
        (["--unit-id", "no spaces"], "--unit-id 'no spaces'"),
        (["--console-tty", "/dev/ttyS0"], "--console-tty '/dev/ttyS0'"),
        (["--wheels", "/no/such/wheels"], "--wheels /no/such/wheels: no such directory"),
        (["--config", "/no/such.toml"], "--config /no/such.toml: no such file"),
        (["--upgrade", "--uninstall"], "--upgrade and --uninstall: choose one"),
        (["--rollback", "--unit-id", "north-3"], "--unit-id goes with an install, not --rollback"),
        (["--upgrade", "--config", "/etc/hosts"], "--config goes with an install, not --upgrade"),
    ],
)
def test_bad_arguments_are_named_and_change_nothing(
    bundle: Path, staged: Path, args: list[str], says: str
) -> None:
    done = install(bundle, staged, *args, check=False)
    assert done.returncode == 2, done.stderr
    assert says in done.stderr
    assert list(staged.iterdir()) == []


def test_a_missing_root_is_refused(bundle: Path, tmp_path: Path) -> None:
    done = install(bundle, tmp_path / "nowhere", check=False)
    assert done.returncode == 2
    assert "no such directory" in done.stderr


SCRIPTS = ("deploy/install.sh", "deploy/build-bundle", "deploy/lock", "deploy/release-id",
           "deploy/list-adapters", "deploy/system-cpu", "scripts/nspawn-check")  # fmt: skip


@pytest.mark.parametrize("script", SCRIPTS)
def test_the_deploy_scripts_parse_and_the_long_ones_explain_themselves(script: str) -> None:
    assert os.access(ROOT / script, os.X_OK), f"{script} is not executable"
    run(["bash", "-n", str(ROOT / script)])
    done = run([str(ROOT / script), "--help"])
    name = script.split("/")[1]
    assert done.stdout.strip()
    if script not in ("deploy/release-id", "deploy/list-adapters", "deploy/system-cpu"):
        assert name in done.stdout
    # An unknown flag is refused before anything runs (deploy/lock once took it and went on to
    # fetch from PyPI and rewrite the lock file).
    bad = run([str(ROOT / script), "--no-such-flag"], check=False)
    assert bad.returncode == 2, bad.stdout + bad.stderr
    assert "--no-such-flag" in bad.stderr


def test_the_release_id_names_the_version_and_changes_with_the_content(tmp_path: Path) -> None:
    first = run([str(ROOT / "deploy/release-id")]).stdout.strip()
    assert first.startswith("0.1.0-")
    copy = tmp_path / "tree"
    shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".venv", ".git", "*cache*"))
    assert run([str(copy / "deploy/release-id")]).stdout.strip() == first
    (copy / "recipes/smoke.toml").write_text("# changed\n", encoding="utf-8")
    second = run([str(copy / "deploy/release-id")]).stdout.strip()
    assert second != first
    # The service unit alone changed: a new release, so an upgrade restarts to apply it.
    (copy / "systemd/unit-controller.service").write_text("# changed\n", encoding="utf-8")
    assert run([str(copy / "deploy/release-id")]).stdout.strip() not in (first, second)


def test_on_a_pi_the_console_uart_becomes_the_field_techs(bundle: Path, staged: Path) -> None:
    boot = staged / "boot/firmware"
    boot.mkdir(parents=True)
    cmdline = "console=serial0,115200 console=tty1 root=PARTUUID=1234-02 rootwait quiet\n"
    (boot / "cmdline.txt").write_text(cmdline)
    # Bookworm's own file ends in model filters; a line there is for that model only.
    (boot / "config.txt").write_text("dtparam=audio=on\n[cm4]\notg_mode=1\nenable_uart=1\n")
    (staged / "dev").mkdir()
    (staged / "dev/serial0").symlink_to("ttyAMA0")  # a Pi 4 with the PL011 on GPIO 14/15
    install(bundle, staged)
    assert (boot / "cmdline.txt").read_text() == (
        "console=tty1 root=PARTUUID=1234-02 rootwait quiet\n"
    )
    assert (boot / "cmdline.txt.unit-controller.bak").read_text() == cmdline
    assert (boot / "config.txt").read_text().endswith("[cm4]\notg_mode=1\nenable_uart=1\n"
                                                      "[all]\nenable_uart=1\n")  # fmt: skip
    dropin = staged / "etc/systemd/system/serial-getty@ttyAMA0.service.d/unit-console.conf"
    assert "115200" in dropin.read_text()
    wants = staged / "etc/systemd/system/getty.target.wants"
    assert (wants / "serial-getty@ttyAMA0.service").is_symlink()
    tree = snapshot(staged)
    install(bundle, staged)
    assert snapshot(staged) == tree


def test_on_a_pi_5_the_console_is_uart0_on_the_gpio_pins(
    bundle: Path, staged: Path, tmp_path: Path
) -> None:
    # A Pi 5's serial0 is its 3-pin debug connector: the field tech plugs into GPIO 14/15.
    boot = staged / "boot/firmware"
    boot.mkdir(parents=True)
    (boot / "cmdline.txt").write_text("console=serial0,115200 console=tty1 rootwait\n")
    (boot / "config.txt").write_text("[all]\n")
    (staged / "dev").mkdir()
    (staged / "dev/serial0").symlink_to("ttyAMA10")
    (staged / "proc/device-tree").mkdir(parents=True)
    (staged / "proc/device-tree/model").write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    install(bundle, staged)
    config = (boot / "config.txt").read_text().splitlines()
    assert {"enable_uart=1", "dtparam=uart0=on"} <= set(config)
    system = staged / "etc/systemd/system"
    wants = system / "getty.target.wants"
    assert (wants / "serial-getty@ttyAMA0.service").is_symlink()
    assert not (wants / "serial-getty@ttyAMA10.service").exists()
    # As an earlier release left it: the getty on the debug connector, enabled, not marked.
    (system / "serial-getty@ttyAMA0.service.d/unit-controller-enabled").unlink()
    old = system / "serial-getty@ttyAMA10.service.d"
    old.mkdir()
    shutil.copy(system / "serial-getty@ttyAMA0.service.d/unit-console.conf", old)
    (wants / "serial-getty@ttyAMA10.service").symlink_to(
        "/lib/systemd/system/serial-getty@.service"
    )
    env = _stand_in(staged, tmp_path)
    install(_release_copy(bundle, tmp_path, "9.9.9-good"), staged, "--upgrade", env=env)
    assert (system / "serial-getty@ttyAMA0.service.d/unit-controller-enabled").exists()
    assert not old.exists()
    assert not (wants / "serial-getty@ttyAMA10.service").is_symlink()
    gone = install(bundle, staged, "--uninstall", env=env)
    assert not (wants / "serial-getty@ttyAMA0.service").is_symlink()
    assert "cmdline.txt.unit-controller.bak is the cmdline.txt from before" in gone.stdout


@pytest.mark.parametrize(
    ("dpkg", "cpu"),
    [("arm64", "aarch64"), ("armhf", "armv7l"), ("amd64", "x86_64"), ("i386", "i686")],
)
def test_the_systems_cpu_is_the_userlands_as_pip_names_it(
    dpkg: str, cpu: str, tmp_path: Path
) -> None:
    # A 32-bit userland on a 64-bit kernel is named for its userland, not `uname -m`.
    fake = tmp_path / "dpkg"
    fake.write_text(f"#!/bin/sh\necho {dpkg}\n")
    fake.chmod(0o755)
    done = run([str(ROOT / "deploy/system-cpu")], env={"PATH": f"{tmp_path}:{os.environ['PATH']}"})
    assert done.stdout.strip() == cpu
