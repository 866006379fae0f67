#!/usr/bin/env bash
# Installs unit-controller on a unit: Raspberry Pi OS (bookworm) or Debian 12, as root.
#
#   deploy/install.sh [--unit-id ID] [--config FILE] [--console-tty TTY]   install (or repair)
#   deploy/install.sh --upgrade        the new release beside the old; back to it if not READY
#   deploy/install.sh --rollback       back to the release before
#           both refuse while a batch runs (the restart would abort it) unless --force, and
#           while the kept config is one the release to start would refuse
#   deploy/install.sh --uninstall [--purge]   remove; config and state stay unless --purge
#   common: --dry-run (print every action, write nothing), --root DIR (stage into DIR: no
#           service is started), --wheels DIR (offline: wheels from deploy/build-bundle)
#
# Environment: PYTHON (default python3), SYSTEMCTL (default systemctl), READY_TIMEOUT (s, 120).
# Safe to run again: what is already as it should be is left alone (a second run changes
# nothing). A site's config (/etc/unit-controller/unit.toml) and udev rules are never
# overwritten. See README.md, "Install on a unit".
set -euo pipefail
umask 022

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
src="$(cd "$here/.." && pwd)"
prog="install.sh"

usage() {
    sed -n '2,16p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

mode=install
dry_run=0
root=""
wheels=""
purge=0
force=0
unit_id=""
config_example="$src/deploy/examples/unit.toml"
config_given=0
console_tty=""
python="${PYTHON:-python3}"
systemctl="${SYSTEMCTL:-systemctl}"
ready_timeout="${READY_TIMEOUT:-120}"

die() { echo "$prog: error: $*" >&2; exit 1; }
bad_usage() { echo "$prog: $*" >&2; echo "(see $prog --help)" >&2; exit 2; }

set_mode() {
    [ "$mode" = install ] || [ "$mode" = "$1" ] || bad_usage "--$mode and --$1: choose one"
    mode="$1"
}

while (($#)); do
    case "$1" in
        --upgrade) set_mode upgrade ;;
        --rollback) set_mode rollback ;;
        --uninstall) set_mode uninstall ;;
        --purge) purge=1 ;;
        --dry-run) dry_run=1 ;;
        --force) force=1 ;;
        --root) [ $# -ge 2 ] || bad_usage "--root needs a directory"; root="$2"; shift ;;
        --root=*) root="${1#--root=}" ;;
        --wheels) [ $# -ge 2 ] || bad_usage "--wheels needs a directory"; wheels="$2"; shift ;;
        --wheels=*) wheels="${1#--wheels=}" ;;
        --unit-id) [ $# -ge 2 ] || bad_usage "--unit-id needs a value"; unit_id="$2"; shift ;;
        --unit-id=*) unit_id="${1#--unit-id=}" ;;
        --config) [ $# -ge 2 ] || bad_usage "--config needs a file"; config_example="$2"; config_given=1; shift ;;
        --config=*) config_example="${1#--config=}"; config_given=1 ;;
        --console-tty) [ $# -ge 2 ] || bad_usage "--console-tty needs a tty name"; console_tty="$2"; shift ;;
        --console-tty=*) console_tty="${1#--console-tty=}" ;;
        -h | --help) usage; exit 0 ;;
        *) bad_usage "unknown argument: $1" ;;
    esac
    shift
done

[ "$purge" -eq 0 ] || [ "$mode" = uninstall ] || bad_usage "--purge goes with --uninstall"
[ "$force" -eq 0 ] || [ "$mode" = upgrade ] || [ "$mode" = rollback ] \
    || bad_usage "--force goes with --upgrade or --rollback"
# A site's config is set at the first install only: elsewhere these would be silently ignored.
[ -z "$unit_id" ] || [ "$mode" = install ] || bad_usage "--unit-id goes with an install, not --$mode"
[ "$config_given" -eq 0 ] || [ "$mode" = install ] || bad_usage "--config goes with an install, not --$mode"
if [ -n "$root" ]; then
    [ -d "$root" ] || bad_usage "--root $root: no such directory"
    root="$(cd "$root" && pwd)"
    [ "$root" != / ] || root=""
fi
if [ -n "$unit_id" ] && ! [[ "$unit_id" =~ ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ ]]; then
    bad_usage "--unit-id '$unit_id': letters, digits, '.', '_', '-' (at most 64), not starting with a sign"
fi
if [ -n "$console_tty" ] && ! [[ "$console_tty" =~ ^tty[A-Za-z0-9]+$ ]]; then
    bad_usage "--console-tty '$console_tty': a tty name such as ttyS0 or ttyAMA0"
fi
if [ -z "$wheels" ] && [ -d "$src/wheels" ]; then
    wheels="$src/wheels"  # an unpacked bundle from deploy/build-bundle carries its wheels
fi
if [ -n "$wheels" ]; then
    [ -d "$wheels" ] || bad_usage "--wheels $wheels: no such directory"
    wheels="$(cd "$wheels" && pwd)"
fi
# A bundle built for another CPU would fail deep in pip, leaving a half-built release.
if [ -n "$wheels" ] && [ -f "$src/PLATFORM" ] && [ "$mode" != uninstall ]; then
    bundle_platform="$(cat "$src/PLATFORM")"
    this_cpu="$("$src/deploy/system-cpu")"
    [ "$bundle_platform" = "$this_cpu" ] \
        || die "this bundle is for $bundle_platform, this machine's system is $this_cpu: build one with deploy/build-bundle --platform $this_cpu (a 32-bit system, armv7l, is not supported: install the 64-bit Raspberry Pi OS)"
fi
[ -f "$config_example" ] || bad_usage "--config $config_example: no such file"
if [ -z "$root" ] && [ "$dry_run" -eq 0 ] && [ "$(id -u)" -ne 0 ]; then
    die "run as root (sudo $0 ...), or stage into a folder with --root DIR"
fi
if [ "$dry_run" -eq 0 ]; then
    # One installer at a time: two would build the same release and race on every file. A
    # staged tree is locked by its folder (no file of ours left in it), a unit under /run.
    if [ -n "$root" ]; then
        exec 9<"$root"
    else
        mkdir -p /run/lock
        exec 9>/run/lock/unit-controller-install.lock
    fi
    flock -n 9 || die "another install.sh is running on ${root:-this system}; wait for it to end"
fi

# --- where things go (inside $root when staging) ---------------------------------------------
opt=/opt/unit-controller
etc=/etc/unit-controller
state=/var/lib/unit-controller
unit_file=/etc/systemd/system/unit-controller.service
sysusers_file=/etc/sysusers.d/unit-controller.conf
tmpfiles_file=/etc/tmpfiles.d/unit-controller.conf
journald_file=/etc/systemd/journald.conf.d/50-unit-controller.conf
udev_file=/etc/udev/rules.d/70-unit-controller.rules
modules_file=/etc/modules-load.d/unit-controller.conf
console_bin=/usr/local/bin/unit-console
controller_bin=/usr/local/bin/unit-controller
# In the console getty's drop-in directory: this script enabled that getty (uninstall disables it).
getty_mark=unit-controller-enabled
console_before=""  # an upgrade: the tty that had the console drop-in before it

changed=0
say() { echo "$prog: $*"; }
# Every change goes through act: printed always, done unless --dry-run.
act() {
    local what="$1"; shift
    changed=1
    if [ "$dry_run" -eq 1 ]; then
        say "would $what"
    else
        say "$what"
        "$@"
    fi
}

# Numeric ids from the target's own user database (the staged one with --root).
id_of() {  # id_of passwd|group NAME
    if [ "$2" = root ]; then echo 0; return; fi
    awk -F: -v n="$2" '$1 == n { print $3; exit }' "$root/etc/$1" 2>/dev/null || true
}

# install_file SRC DEST MODE OWNER GROUP [keep]: DEST (inside root) made equal to SRC; with
# "keep", an existing DEST is the site's and stays as it is.
install_file() {
    local from="$1" dest="$root$2" mode="$3" owner="$4" group="$5" keep="${6:-}"
    if [ -e "$dest" ] && [ "$keep" = keep ]; then
        cmp -s "$from" "$dest" || say "kept the site's $2 (the shipped one is $from)"
        ensure_mode "$2" "$mode" "$owner" "$group"
        return
    fi
    if ! [ -f "$dest" ] || ! cmp -s "$from" "$dest"; then
        act "install $2" _copy "$from" "$dest"
    fi
    ensure_mode "$2" "$mode" "$owner" "$group"
}
_copy() {
    mkdir -p "$(dirname "$2")"
    cp "$1" "$2.new.$$"
    mv -f "$2.new.$$" "$2"
}

ensure_mode() {  # ensure_mode PATH MODE OWNER GROUP (path inside root; ids from root)
    local path="$root$1" mode="$2" owner="$3" group="$4" uid gid
    if [ ! -e "$path" ]; then
        return  # a dry run that did not create it
    fi
    if [ "$(stat -c '%a' "$path")" != "${mode#0}" ]; then
        act "chmod $mode $1" chmod "$mode" "$path"
    fi
    uid="$(id_of passwd "$owner")"
    gid="$(id_of group "$group")"
    if [ -z "$uid" ] || [ -z "$gid" ]; then
        [ "$dry_run" -eq 1 ] || say "note: $owner:$group not in $root/etc/passwd, group; $1 keeps its owner"
        return
    fi
    if [ "$(stat -c '%u:%g' "$path")" != "$uid:$gid" ]; then
        if [ "$(id -u)" -ne 0 ]; then
            say "note: not root: $1 should be owned by $owner:$group"
        else
            act "chown $owner:$group $1" chown "$uid:$gid" "$path"
        fi
    fi
}

ensure_dir() {  # ensure_dir PATH MODE OWNER GROUP
    [ -d "$root$1" ] || act "create $1/" mkdir -p "$root$1"
    ensure_mode "$@"
}

ensure_link() {  # ensure_link TARGET LINK (link inside root; target as the link should read)
    local target="$1" link="$root$2"
    if [ "$(readlink "$link" 2>/dev/null || true)" != "$target" ]; then
        act "link $2 -> $target" _link "$target" "$link"
    fi
}
_link() {
    mkdir -p "$(dirname "$2")"
    ln -sfn "$1" "$2.new.$$"
    mv -Tf "$2.new.$$" "$2"
}

remove() {  # remove PATH... (inside root)
    local p
    for p in "$@"; do
        if [ -e "$root$p" ] || [ -L "$root$p" ]; then
            act "remove $p" rm -rf -- "$root$p"
        fi
    done
}

_may() { "$@" 2>/dev/null || say "note: '$*' did not succeed here; the next boot applies it"; }

live() { [ -z "$root" ]; }  # changing the running system, not staging a tree
# With --root nothing is started, unless a stand-in systemctl is given (SYSTEMCTL=, the tests).
can_start() { live || [ -n "${SYSTEMCTL:-}" ]; }

# --- the release: a virtualenv per version, /opt/unit-controller/current points at one --------
release_id() { "$src/deploy/release-id"; }
# What system_files and config install from a release (udev rules are the site's once in place).
release_system_files=(systemd/unit-controller.service systemd/journald.conf.d/50-unit-controller.conf
    systemd/serial-getty/unit-console.conf deploy/modules-load.d/unit-controller.conf
    systemd/tmpfiles.d/unit-controller.conf)
system_copy=share/unit-controller/system  # inside a release

build_release() {  # build_release ID: the venv at /opt/unit-controller/releases/ID
    local id="$1" dir="$opt/releases/$1"
    if [ -f "$root$dir/.complete" ]; then
        return
    fi
    if [ "$dry_run" -eq 1 ]; then
        say "would build release $id in $dir (virtualenv, deploy/requirements.lock with hashes${wheels:+, offline from $wheels})"
        changed=1
        return
    fi
    if ! _python_ok && live && [ -z "$wheels" ] && command -v apt-get >/dev/null; then
        act "install Debian's python3-venv" sh -c \
            'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null'
    fi
    _python_ok || die "$python 3.11 or newer with venv is needed (apt-get install python3-venv;
offline, carry its packages: apt-get download python3-venv python3.11-venv python3-pip-whl python3-setuptools-whl, then dpkg -i *.deb)"
    act "build release $id in $dir" _build "$id" "$root$dir"
}
_python_ok() { "$python" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; }

# The pip wheel ensurepip carries (Python's own, or Debian's python3-pip-whl), if any.
_pip_wheel() {
    "$python" -c '
import ensurepip, glob, os
here = os.path.join(os.path.dirname(ensurepip.__file__), "_bundled")
found = sorted(glob.glob(os.path.join(here, "pip-*.whl")))
found = found or sorted(glob.glob("/usr/share/python-wheels/pip-*.whl"))
print(found[-1] if found else "")' 2>/dev/null || true
}

_build() {
    local id="$1" dir="$2" work pip_from=() wheel pip pip_tmp=""
    rm -rf "$dir"  # a build that did not finish
    mkdir -p "$(dirname "$dir")"
    # A release needs no pip of its own: pip runs from ensurepip's wheel (pip supports being run
    # from its wheel), which saves installing and compiling pip into every release (4 s here,
    # several times that on a Pi, and 25 MB of the card). Without that wheel, the venv gets its
    # own.
    wheel="$(_pip_wheel)"
    if [ -n "$wheel" ] && [ -f "$wheel" ]; then
        "$python" -m venv --without-pip "$dir"
        # Unpacked, not run from the zip: zipimport compiles pip afresh at every run. Inside the
        # release, so a build that fails leaves nothing elsewhere (the next one removes it all).
        pip_tmp="$dir/.pip-for-install"
        "$python" -c 'import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])' \
            "$wheel" "$pip_tmp"
        pip=(env PYTHONPATH="$pip_tmp" "$dir/bin/python" -m pip)
    else
        "$python" -m venv "$dir"
        pip=("$dir/bin/pip")
    fi
    pip+=(install --quiet --disable-pip-version-check --no-deps)
    if [ -n "$wheels" ]; then
        pip_from=(--no-index --find-links "$wheels")
    fi
    if [ -n "$wheels" ] && compgen -G "$wheels/unit_controller-*.whl" >/dev/null; then
        # One pip run for the locked packages and the project's wheel, its hash taken here: a
        # pip run costs ~1 s of start-up on a PC, several on a Pi.
        local reqs="$dir/.requirements-for-install"
        {
            cat "$src/deploy/requirements.lock"
            echo
            "$python" - "$wheels"/unit_controller-*.whl <<'PY'
import hashlib, pathlib, sys
for name in sys.argv[1:]:
    path = pathlib.Path(name).resolve()
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    print(f"unit-controller @ {path.as_uri()} --hash=sha256:{digest}")
PY
        } >"$reqs"
        "${pip[@]}" --require-hashes "${pip_from[@]}" -r "$reqs"
        rm -f "$reqs"
    else
        "${pip[@]}" --require-hashes "${pip_from[@]}" -r "$src/deploy/requirements.lock"
        work="$(mktemp -d)"
        # Built from a copy: the checkout may be read-only, and stays clean.
        (cd "$src" && tar cf - --exclude=.venv --exclude=.git --exclude=wheels --exclude=build \
            --exclude='*.egg-info' .) | (cd "$work" && tar xf -)
        "${pip[@]}" "${pip_from[@]}" "$work"
        rm -rf "$work"
    fi
    [ -z "$pip_tmp" ] || rm -rf "$pip_tmp"
    # The service files this release runs under, kept with it: a rollback puts them back.
    local f
    for f in "${release_system_files[@]}"; do
        mkdir -p "$(dirname "$dir/$system_copy/$f")"
        cp "$src/$f" "$dir/$system_copy/$f"
    done
    # Fails here, not at the first start, if the release cannot run.
    "$dir/bin/unit-controller" check-config "$dir/share/unit-controller/deploy/examples/sim.toml" >/dev/null
    echo "$id" >"$dir/.complete"
}

current_release() { basename "$(readlink "$root$opt/current" 2>/dev/null || echo "")"; }

switch_to() {  # switch_to ID: current -> ID, previous -> what current was
    local id="$1" was
    was="$(current_release)"
    if [ -n "$was" ] && [ "$was" != "$id" ]; then
        ensure_link "releases/$was" "$opt/previous"
    fi
    ensure_link "releases/$id" "$opt/current"
}

prune_releases() {  # keep current and previous
    local keep1 keep2 d
    keep1="$(current_release)"
    keep2="$(basename "$(readlink "$root$opt/previous" 2>/dev/null || echo "")")"
    for d in "$root$opt"/releases/*; do
        [ -d "$d" ] || continue
        case "$(basename "$d")" in "$keep1" | "$keep2") ;; *) remove "$opt/releases/$(basename "$d")" ;; esac
    done
}

# --- the pieces -------------------------------------------------------------------------------
pi5() {  # the board is a Raspberry Pi 5 (its device tree says so)
    local model
    for model in "$root/proc/device-tree/model" "$root/sys/firmware/devicetree/base/model"; do
        [ -r "$model" ] && tr -d '\0' <"$model" | grep -q "Raspberry Pi 5" && return 0
    done
    return 1
}

installed_console() {  # the tty whose getty has this script's console drop-in, if any
    local f t
    for f in "$root"/etc/systemd/system/serial-getty@*.service.d/unit-console.conf; do
        [ -e "$f" ] || continue
        t="$(basename "$(dirname "$f")" .service.d)"
        echo "${t#serial-getty@}"
        return
    done
}

resolve_console_tty() {  # the UART on GPIO 14/15, where the field tech plugs in
    local kept
    kept="$(installed_console)"
    if [ -n "$console_tty" ]; then
        echo "$console_tty"
    elif [ -n "$kept" ] && ! { [ "$kept" = ttyAMA10 ] && pi5; }; then
        echo "$kept"  # the console the unit has (an earlier --console-tty stays chosen)
    elif pi5; then
        # A Pi 5's serial0 is its 3-pin debug connector (ttyAMA10); GPIO 14/15 is UART0,
        # ttyAMA0 once config.txt has dtparam=uart0=on (pi_console_uart sets it).
        echo ttyAMA0
    elif [ -L "$root/dev/serial0" ]; then
        basename "$(readlink -f "$root/dev/serial0")"  # Pi 3/4: ttyS0 (or ttyAMA0)
    else
        echo ttyS0
    fi
}

users_and_groups() {
    install_file "$src/systemd/sysusers.d/unit-controller.conf" "$sysusers_file" 0644 root root
    local missing=0 name
    for name in unit-controller fieldtech; do
        [ -n "$(id_of passwd "$name")" ] || missing=1
    done
    [ -n "$(id_of group unit-console)" ] || missing=1
    if [ "$missing" -eq 1 ] || ! _members_ok; then
        act "create users and groups (systemd-sysusers)" \
            systemd-sysusers ${root:+--root="$root"} "$root$sysusers_file"
    fi
}
_members_ok() {
    awk -F: '$1 == "dialout" && $4 ~ /(^|,)unit-controller(,|$)/ { d = 1 }
             $1 == "unit-console" && $4 ~ /(^|,)fieldtech(,|$)/ { c = 1 }
             END { exit !(d && c) }' "$root/etc/group" 2>/dev/null
}

login_shell() {
    ensure_link "../../../opt/unit-controller/current/bin/unit-console" "$console_bin"
    ensure_link "../../../opt/unit-controller/current/bin/unit-controller" "$controller_bin"
    # login(1) takes any shell, but chsh and some PAM stacks want it listed.
    if ! grep -qxF "$console_bin" "$root/etc/shells" 2>/dev/null; then
        act "list $console_bin in /etc/shells" _append "$root/etc/shells" "$console_bin"
    fi
}
_append() { mkdir -p "$(dirname "$1")"; echo "$2" >>"$1"; }

# config.txt applies a line only under the conditional filter above it ([cm4], [pi5], ...):
# a setting counts when it stands before any filter or under [all], and is added under [all].
_pi_set() {  # _pi_set FILE LINE: LINE is in force on every model
    awk -v want="$2" '
        /^[[:space:]]*\[/ { f = $0; gsub(/[[:space:]]/, "", f); all = (f == "[all]"); seen = 1; next }
        (!seen || all) && $0 == want { found = 1 }
        END { exit !found }' "$1"
}
_pi_add() { printf '[all]\n%s\n' "$2" >>"$1"; }  # _pi_add FILE LINE

check_new_config() {  # check_new_config ID: before anything else changes, with the release
    [ ! -e "$root$etc/unit.toml" ] || return 0  # a site's config is kept, not replaced
    if [ "$dry_run" -eq 1 ]; then
        [ -x "$root$opt/releases/$1/bin/unit-controller" ] || return 0  # not built: nothing to ask
    fi
    if ! "$root$opt/releases/$1/bin/unit-controller" check-config "$config_example" >&2; then
        die "$config_example is not a valid unit config (above); nothing was installed (the release built in $opt/releases/$1 waits for the next run)"
    fi
}

check_kept_config() {  # check_kept_config ID: the site's config, as release ID would start on it
    local kept="$root$etc/unit.toml" bin="$root$opt/releases/$1/bin/unit-controller"
    [ -e "$kept" ] || return 0  # none yet: config() installs the example
    if [ "$dry_run" -eq 1 ]; then
        [ -x "$bin" ] || return 0  # not built: nothing to ask
    fi
    if ! "$bin" check-config "$kept" >&2; then
        die "release $1 refuses $etc/unit.toml (above): nothing was changed, the running release goes on; fix the config for $1 first"
    fi
}

batch_state() {  # the state the running service last told systemd (STATUS=<state> ...), or ""
    can_start || return 0
    "$systemctl" is-active --quiet unit-controller.service 2>/dev/null || return 0
    "$systemctl" show -p StatusText --value unit-controller.service 2>/dev/null | awk '{ print $1 }'
}

refuse_during_batch() {  # refuse_during_batch WHAT: unless --force, while a batch is under way
    local state
    state="$(batch_state)"
    case "$state" in
        "" | IDLE | STOPPED | ABORTED | COMPLETE | RESETTING | CLEARING | stopping) return 0 ;;
    esac
    if [ "$force" -eq 1 ]; then
        say "warning: a batch is under way ($state); --force: the restart aborts it"
        return 0
    fi
    die "a batch is under way ($state): $1 restarts the service, which aborts it; wait for it to end (or stop it), or add --force"
}

config() {
    local dest="$root$etc/unit.toml"
    install_file "$src/systemd/tmpfiles.d/unit-controller.conf" "$tmpfiles_file" 0644 root root
    ensure_dir "$etc" 0750 root unit-controller
    ensure_dir "$etc/tls" 0750 root unit-controller
    if [ ! -e "$dest" ]; then
        local from="$config_example"
        if [ -n "$unit_id" ]; then
            # Set on a copy first: a config whose id cannot be set is not installed at all.
            from="$(mktemp)"
            cp "$config_example" "$from"
            if ! set_unit_id "$from" "$unit_id"; then
                rm -f "$from"
                die "$config_example has no 'id = ' line in its [unit] table to set --unit-id in; nothing of it was installed"
            fi
            if [ "$dry_run" -eq 1 ]; then
                say "would set [unit] id = \"$unit_id\" in $etc/unit.toml"
            else
                say "set [unit] id = \"$unit_id\" in $etc/unit.toml"
            fi
        fi
        install_file "$from" "$etc/unit.toml" 0640 root unit-controller keep
        [ "$from" = "$config_example" ] || rm -f "$from"
    else
        ensure_mode "$etc/unit.toml" 0640 root unit-controller
        [ -z "$unit_id" ] || [ "$(unit_id_of "$dest")" = "$unit_id" ] \
            || say "kept the site's $etc/unit.toml: its [unit] id stays (not --unit-id $unit_id)"
        [ "$config_given" -eq 0 ] \
            || say "kept the site's $etc/unit.toml (not --config $config_example): edit it, or remove it to install another"
    fi
    ensure_dir /var/lib/unit-console 0750 fieldtech unit-console
}

unit_id_of() {  # unit_id_of FILE: the id its [unit] table sets, unquoted
    awk '
        /^[[:space:]]*\[/ { in_unit = ($0 ~ /^[[:space:]]*\[unit\][[:space:]]*(#.*)?$/) }
        in_unit && /^[[:space:]]*id[[:space:]]*=/ {
            sub(/^[^=]*=[[:space:]]*/, ""); sub(/[[:space:]]*(#.*)?$/, ""); gsub(/"/, ""); print; exit
        }
    ' "$1"
}

set_unit_id() {  # set_unit_id FILE ID: the id line of the [unit] table, however it is spaced
    local tmp="$1.unit-id"
    awk -v id="$2" '
        /^[[:space:]]*\[/ { in_unit = ($0 ~ /^[[:space:]]*\[unit\][[:space:]]*(#.*)?$/) }
        in_unit && !done && /^[[:space:]]*id[[:space:]]*=/ { print "id = \"" id "\""; done = 1; next }
        { print }
        END { if (!done) exit 3 }
    ' "$1" >"$tmp" || { rm -f "$tmp"; return 1; }
    cat "$tmp" >"$1" && rm -f "$tmp"
}

system_files() {  # system_files TTY [FROM]: from this bundle, or a release's kept copy
    local tty="$1" from="${2:-$src}"
    install_file "$from/systemd/unit-controller.service" "$unit_file" 0644 root root
    install_file "$from/systemd/journald.conf.d/50-unit-controller.conf" "$journald_file" 0644 root root
    install_file "$from/systemd/serial-getty/unit-console.conf" \
        "/etc/systemd/system/serial-getty@$tty.service.d/unit-console.conf" 0644 root root
    install_file "$src/deploy/udev/70-unit-controller.rules" "$udev_file" 0644 root root keep
    install_file "$from/deploy/modules-load.d/unit-controller.conf" "$modules_file" 0644 root root
}

restore_system_files() {  # restore_system_files ID TTY: back to the files release ID ran under
    local from="$root$opt/releases/$1/$system_copy"
    if [ ! -d "$from" ]; then
        say "release $1 keeps no copy of its service files (built by an older install.sh): they stay as they are"
        return
    fi
    system_files "$2" "$from"
    install_file "$from/systemd/tmpfiles.d/unit-controller.conf" "$tmpfiles_file" 0644 root root
    apply_live
}

enable_units() {
    local tty="$1" wants="/etc/systemd/system/multi-user.target.wants/unit-controller.service"
    local getty="/etc/systemd/system/getty.target.wants/serial-getty@$tty.service"
    if [ ! -L "$root$wants" ]; then
        if live; then
            act "enable unit-controller.service" "$systemctl" enable --quiet unit-controller.service
        else
            act "enable unit-controller.service" "$systemctl" --root="$root" enable --quiet unit-controller.service
        fi
    fi
    local mark="$root/etc/systemd/system/serial-getty@$tty.service.d/$getty_mark"
    if [ ! -L "$root$getty" ]; then
        # The stock template; staged trees may not have it, and the link is all enabling does.
        act "enable serial-getty@$tty.service (the field tech's console)" \
            _link /lib/systemd/system/serial-getty@.service "$root$getty"
        # So that uninstall disables only a getty this script enabled.
        [ "$dry_run" -eq 1 ] || : >"$mark"
    elif [ "$mode" = upgrade ] && [ "$console_before" = "$tty" ] && [ ! -e "$mark" ]; then
        # Enabled with its console drop-in by a release that did not mark it: ours.
        act "mark serial-getty@$tty.service as the field tech's console" _touch "$mark"
    fi
    local f other
    for f in "$root"/etc/systemd/system/serial-getty@*.service.d/unit-console.conf; do
        [ -e "$f" ] || continue
        other="$(basename "$(dirname "$f")" .service.d)"
        other="${other#serial-getty@}"
        # The console moved (a Pi 5 is now on GPIO 14/15): the old tty's getty goes.
        [ "$other" = "$tty" ] || retire_console "$other"
    done
}
_touch() { mkdir -p "$(dirname "$1")"; : >"$1"; }

retire_console() {  # retire_console TTY: its console drop-in, and its getty if ours
    local tty="$1" dropins="/etc/systemd/system/serial-getty@$1.service.d"
    if [ -e "$root$dropins/$getty_mark" ] || { [ "$mode" = upgrade ] && [ -e "$root$dropins/unit-console.conf" ]; }; then
        if live; then
            act "stop and disable serial-getty@$tty.service" "$systemctl" disable --now --quiet "serial-getty@$tty.service"
        fi
        remove "/etc/systemd/system/getty.target.wants/serial-getty@$tty.service" "$dropins/$getty_mark"
    fi
    remove "$dropins/unit-console.conf"
    [ "$dry_run" -eq 1 ] || rmdir "$root$dropins" 2>/dev/null || true
}

pi_console_uart() {  # the console UART is the field tech's, not the kernel's
    local boot cmdline cfg
    for boot in /boot/firmware /boot; do
        [ -f "$root$boot/cmdline.txt" ] && break
    done
    cmdline="$root$boot/cmdline.txt"
    cfg="$root$boot/config.txt"
    [ -f "$cmdline" ] || return 0
    if grep -Eq '(^| )console=(serial0|ttyS0|ttyAMA0)[^ ]*' "$cmdline"; then
        act "remove the kernel console from $boot/cmdline.txt (reboot to apply)" \
            sed -i.unit-controller.bak -E -e 's/(^| )console=(serial0|ttyS0|ttyAMA0)[^ ]*//g' \
                -e 's/^ +//' "$cmdline"
    fi
    if [ -f "$cfg" ] && ! _pi_set "$cfg" enable_uart=1; then
        act "enable the UART in $boot/config.txt (reboot to apply)" _pi_add "$cfg" enable_uart=1
    fi
    if pi5 && [ -f "$cfg" ] && ! _pi_set "$cfg" dtparam=uart0=on; then
        act "enable UART0 on GPIO 14/15 in $boot/config.txt (a Pi 5; reboot to apply)" \
            _pi_add "$cfg" dtparam=uart0=on
    fi
}

apply_live() {
    live && [ "$changed" -eq 1 ] || return 0
    act "reload systemd" "$systemctl" daemon-reload
    # Each of these may not apply here (no udev in a container, no modules to load): a note,
    # not a failed install; the next boot applies them anyway.
    act "reload udev rules" _may sh -c 'udevadm control --reload && udevadm trigger --subsystem-match=tty'
    act "load the USB serial drivers" _may "$systemctl" restart systemd-modules-load.service
    act "apply the journald limits" _may "$systemctl" restart systemd-journald.service
    act "create directories (tmpfiles)" systemd-tmpfiles --create "$tmpfiles_file"
}

start_and_wait() {  # systemctl start waits for READY=1 (Type=notify); false if it never came
    can_start || return 0
    if [ "$dry_run" -eq 1 ]; then
        say "would restart unit-controller.service and wait for READY"
        return 0
    fi
    say "restarting unit-controller.service, waiting up to ${ready_timeout}s for READY"
    # After five failed starts in ten minutes systemd refuses even this start: clear the count.
    "$systemctl" reset-failed unit-controller.service >/dev/null 2>&1 || true
    timeout "$ready_timeout" "$systemctl" restart unit-controller.service \
        && "$systemctl" is-active --quiet unit-controller.service
}

# --- the commands -----------------------------------------------------------------------------
do_install() {
    local id tty current
    id="$(release_id)"
    tty="$(resolve_console_tty)"
    current="$(current_release)"
    if [ -n "$current" ] && [ "$current" != "$id" ]; then
        die "release $current is installed; to switch to $id: $prog --upgrade"
    fi
    # The release first (inside its own folder): it checks the config before users, links
    # and system files change.
    build_release "$id"
    check_new_config "$id"
    users_and_groups
    switch_to "$id"
    login_shell
    config
    system_files "$tty"
    enable_units "$tty"
    pi_console_uart
    apply_live
    # A dry run asks too (is-active changes nothing) and says what it would do.
    if live && ! "$systemctl" is-active --quiet unit-controller.service; then
        start_and_wait || die "unit-controller did not reach READY: journalctl -u unit-controller -n 50"
    fi
    if [ "$changed" -eq 0 ]; then
        say "release $id installed; nothing to change"
    elif [ "$dry_run" -eq 0 ]; then
        say "release $id installed"
        say "next: set $etc/unit.toml (ports, [unit] id, MQTT), put the adapters' serial numbers in $udev_file, passwd fieldtech"
    fi
}

do_upgrade() {
    local id old tty before
    id="$(release_id)"
    old="$(current_release)"
    [ -n "$old" ] || die "nothing installed to upgrade: run $prog without --upgrade"
    tty="$(resolve_console_tty)"
    console_before="$(installed_console)"
    # Before anything changes: the release, then whether it takes the site's config, then
    # whether a restart now would abort a batch.
    build_release "$id"
    check_kept_config "$id"
    [ "$old" = "$id" ] || refuse_during_batch "the upgrade"
    users_and_groups
    login_shell
    config
    system_files "$tty"
    enable_units "$tty"
    apply_live
    if [ "$old" = "$id" ]; then
        say "release $id is already current"
        return
    fi
    before="$(basename "$(readlink "$root$opt/previous" 2>/dev/null || echo "")")"
    switch_to "$id"
    if ! start_and_wait; then
        say "release $id did not reach READY: rolling back to $old"
        if [ "$dry_run" -eq 0 ]; then
            _link "releases/$old" "$root$opt/current"
            # The release to roll back to stays what it was before this upgrade.
            if [ -n "$before" ]; then
                _link "releases/$before" "$root$opt/previous"
            else
                rm -f "$root$opt/previous"
            fi
        fi
        # The new unit file may be what kept it from starting.
        restore_system_files "$old" "$tty"
        start_and_wait || die "the old release $old did not start either: journalctl -u unit-controller"
        prune_releases
        die "upgrade to $id failed; $old runs again (journalctl -u unit-controller for why)"
    fi
    prune_releases
    say "upgraded $old -> $id (rollback: $prog --rollback)"
}

do_rollback() {
    local cur prev
    cur="$(current_release)"
    prev="$(basename "$(readlink "$root$opt/previous" 2>/dev/null || echo "")")"
    [ -n "$prev" ] && [ -f "$root$opt/releases/$prev/.complete" ] || die "no previous release to roll back to"
    check_kept_config "$prev"
    refuse_during_batch "the rollback"
    ensure_link "releases/$prev" "$opt/current"
    ensure_link "releases/$cur" "$opt/previous"
    restore_system_files "$prev" "$(resolve_console_tty)"
    start_and_wait || die "release $prev did not reach READY either: journalctl -u unit-controller"
    if [ "$dry_run" -eq 1 ]; then
        say "would roll back $cur -> $prev"
        return
    fi
    # --rollback swaps the two releases kept: a second one goes forward again, so say which way.
    if [ "$root$opt/releases/$prev/.complete" -nt "$root$opt/releases/$cur/.complete" ]; then
        say "back to the newer release: $cur -> $prev ($prog --rollback swaps them again)"
    else
        say "rolled back $cur -> $prev ($prog --rollback again returns to $cur)"
    fi
}

do_uninstall() {
    local f
    if live && [ -e "$unit_file" ]; then
        act "stop and disable unit-controller.service" "$systemctl" disable --now --quiet unit-controller.service
    fi
    if [ -n "$root" ] && [ -L "$root/etc/systemd/system/multi-user.target.wants/unit-controller.service" ]; then
        remove /etc/systemd/system/multi-user.target.wants/unit-controller.service
    fi
    remove "$unit_file" "$journald_file" "$modules_file" "$sysusers_file" "$tmpfiles_file"
    for f in "$root"/etc/systemd/system/serial-getty@*.service.d/unit-console.conf; do
        [ -e "$f" ] || continue
        local tty
        tty="$(basename "$(dirname "$f")" .service.d)"
        retire_console "${tty#serial-getty@}"
    done
    remove "$console_bin" "$controller_bin" "$opt"
    if grep -qxF "$console_bin" "$root/etc/shells" 2>/dev/null; then
        act "unlist $console_bin from /etc/shells" sed -i "\\|^$console_bin\$|d" "$root/etc/shells"
    fi
    if [ "$purge" -eq 1 ]; then
        remove "$etc" "$state" "$udev_file" /var/lib/unit-console
    fi
    if live; then
        apply_live_uninstall
    fi
    for f in "$root"/boot/firmware/cmdline.txt.unit-controller.bak "$root"/boot/cmdline.txt.unit-controller.bak; do
        [ -e "$f" ] && [ "$dry_run" -eq 0 ] \
            && say "the kernel console and enable_uart stay as install set them: ${f#"$root"} is the cmdline.txt from before"
    done
    if [ "$purge" -eq 1 ]; then
        say "kept the users unit-controller and fieldtech (userdel them if nothing else uses them)"
    else
        [ "$dry_run" -eq 1 ] || say "kept $etc, $state and $udev_file (--purge removes them)"
    fi
}
apply_live_uninstall() {
    [ "$changed" -eq 1 ] || return 0
    act "reload systemd" "$systemctl" daemon-reload
}

case "$mode" in
    install) do_install ;;
    upgrade) do_upgrade ;;
    rollback) do_rollback ;;
    uninstall) do_uninstall ;;
esac
