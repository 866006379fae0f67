"""A real Mosquitto for tests: its process on a free port, and a test CA for TLS brokers.

Test support only: never touches a broker it did not start, and never waits without a bound.
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import time
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import IO

HOST = "127.0.0.1"
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
CERT_DAYS = 2
_CN = re.compile(r"[A-Za-z0-9._-]{1,64}")

# A minimal OpenSSL config of our own, so the host's openssl.cnf cannot add or clash with
# extensions. EC P-256 keys: fast to generate, and what a Pi would use.
_OPENSSL_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
[ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1, DNS:localhost
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[client]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
"""


class BrokerError(RuntimeError):
    """Mosquitto did not start (or stop) as asked; carries the tail of its log."""


class _PortTaken(BrokerError):
    """Another process took the port between choosing it and mosquitto binding it."""


@dataclass(frozen=True)
class BrokerTls:
    """The files a client needs for a TLS broker: the test CA, and its own cert and key."""

    ca_file: Path
    cert_file: Path
    key_file: Path


def free_port() -> int:
    """A TCP port on the loopback that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        port: int = probe.getsockname()[1]
    return port


def _mosquitto_binary() -> str:
    found = shutil.which("mosquitto") or shutil.which("mosquitto", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise BrokerError("mosquitto not found (Debian: apt install mosquitto)")
    return found


class _TestCa:
    """A throwaway CA in `directory` issuing the broker's and clients' certificates (cached)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.ca_file = directory / "ca.crt"
        self._ca_key = directory / "ca.key"
        self._cnf = directory / "openssl.cnf"

    def _openssl(self, *args: str) -> None:
        done = subprocess.run(
            ["openssl", *args], capture_output=True, text=True, check=False, timeout=30
        )
        if done.returncode != 0:
            raise BrokerError(f"openssl {args[0]} failed: {done.stderr.strip()}")

    def _ensure_ca(self) -> None:
        if self.ca_file.exists():
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        self._cnf.write_text(_OPENSSL_CNF)
        self._openssl(
            "req", "-x509", "-config", str(self._cnf), "-extensions", "ca",
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(self._ca_key), "-out", str(self.ca_file),
            "-days", str(CERT_DAYS), "-subj", "/CN=unit-controller test CA",
        )  # fmt: skip

    def issue(self, name: str, *, cn: str, profile: str) -> tuple[Path, Path]:
        """Cert and key files for `cn` with extension section `profile` ("server"/"client")."""
        if not _CN.fullmatch(cn):
            raise ValueError(f"certificate CN {cn!r}: use letters, digits, '.', '_' or '-'")
        cert, key = self.directory / f"{name}.crt", self.directory / f"{name}.key"
        if cert.exists():
            return cert, key
        self._ensure_ca()
        csr = self.directory / f"{name}.csr"
        self._openssl(
            "req", "-new", "-config", str(self._cnf),
            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", str(key), "-out", str(csr), "-subj", f"/CN={cn}",
        )  # fmt: skip
        self._openssl(
            "x509", "-req", "-in", str(csr), "-CA", str(self.ca_file), "-CAkey", str(self._ca_key),
            "-set_serial", f"0x{secrets.token_hex(16)}", "-days", str(CERT_DAYS),
            "-extfile", str(self._cnf), "-extensions", profile, "-out", str(cert),
        )  # fmt: skip
        csr.unlink()
        return cert, key


_STARTED: weakref.WeakSet[Mosquitto] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    """Last resort if a fixture's teardown never ran: no broker outlives the test session."""
    for broker in list(_STARTED):
        broker.kill()


class Mosquitto:
    """A real Mosquitto on a free loopback port, in a temp dir; can be stopped and restarted on
    the same port.

    Persistence is on (saved on stop and every second), so a clean_session=False client keeps
    its subscriptions and queued QoS 1 messages across `restart()`; after `kill()` it keeps what
    the last autosave held. TLS brokers require a client certificate signed by the test CA and
    use its CN as the username, as the site broker in deploy/mosquitto does.
    """

    def __init__(self, *, workdir: Path, tls: bool = False) -> None:
        if any(c.isspace() for c in str(workdir)):
            raise ValueError(f"workdir {workdir}: mosquitto.conf paths cannot hold whitespace")
        self.workdir = workdir
        self.tls = tls
        self.host = HOST
        self.port = free_port()
        self.config_file = workdir / "mosquitto.conf"
        self.log_file = workdir / "mosquitto.log"
        self._output_file = workdir / "mosquitto.out"
        self._ca = _TestCa(workdir / "certs")
        self._process: subprocess.Popen[bytes] | None = None
        self._output: IO[bytes] | None = None
        self._started_once = False
        workdir.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"<Mosquitto {self.url} {'running' if self.running else 'stopped'}>"

    @property
    def url(self) -> str:
        """Where clients connect, e.g. "mqtts://127.0.0.1:40123" (the cert is for 127.0.0.1)."""
        return f"{'mqtts' if self.tls else 'mqtt'}://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._process is not None and self._process.poll() is None

    def client_tls(self, cn: str) -> BrokerTls:
        """A client certificate signed by the test CA with common name `cn` (TLS brokers only)."""
        if not self.tls:
            raise BrokerError("client_tls() is for a TLS broker (Mosquitto(tls=True))")
        cert, key = self._ca.issue(f"client-{cn}", cn=cn, profile="client")
        return BrokerTls(ca_file=self._ca.ca_file, cert_file=cert, key_file=key)

    def server_tls(self) -> BrokerTls:
        """The broker's own files: the test CA, and its certificate (SAN 127.0.0.1, localhost)
        and key (TLS brokers only)."""
        if not self.tls:
            raise BrokerError("server_tls() is for a TLS broker (Mosquitto(tls=True))")
        cert, key = self._ca.issue("server", cn="localhost", profile="server")
        return BrokerTls(ca_file=self._ca.ca_file, cert_file=cert, key_file=key)

    def config_text(self) -> str:
        """The mosquitto.conf this broker runs with (a subclass may run another)."""
        lines = [f"listener {self.port} {self.host}"]
        if self.tls:
            server = self.server_tls()
            lines += [
                f"cafile {server.ca_file}",
                f"certfile {server.cert_file}",
                f"keyfile {server.key_file}",
                "require_certificate true",
                "use_identity_as_username true",
                "tls_version tlsv1.2",
                "allow_anonymous false",
            ]
        else:
            lines.append("allow_anonymous true")
        if os.geteuid() == 0:
            lines.append("user root")  # else it drops to `mosquitto`, who cannot write workdir
        lines += [
            # The default (1000) silently drops QoS 1 messages for a slow or offline
            # subscriber; set on purpose so that a loss seen in a test is ours, not the broker's.
            "max_queued_messages 1000000",
            # max_inflight_messages stays at its default (20): it only paces delivery, the
            # rest waits in the queue above, nothing is dropped.
            "persistence true",
            f"persistence_location {self.workdir}/",
            "autosave_interval 1",
            f"log_dest file {self.log_file}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_type subscribe",
        ]
        return "\n".join(lines) + "\n"

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of mosquitto's log and console output, for error messages."""
        parts = []
        for path in (self.log_file, self._output_file):
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"--- {path.name}\n" + "\n".join(text))
        return "\n".join(parts)

    def start(self) -> None:
        """Write the config, start mosquitto and wait (bounded, blocking) until it accepts
        connections. The first start moves to another free port if its port was taken in the
        meantime (parallel test workers); later starts keep the port clients know."""
        if self.running:
            raise BrokerError(f"{self!r} is already running")
        for attempt in range(1, 4):
            try:
                self._start_once()
            except _PortTaken:
                if self._started_once or attempt == 3:
                    raise
                self.port = free_port()
            else:
                self._started_once = True
                return

    def _start_once(self) -> None:
        self.config_file.write_text(self.config_text())
        log_start = self.log_file.stat().st_size if self.log_file.exists() else 0
        self._output = self._output_file.open("ab")
        self._process = subprocess.Popen(
            [_mosquitto_binary(), "-c", str(self.config_file)],
            stdin=subprocess.DEVNULL,
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )
        _STARTED.add(self)
        deadline = time.monotonic() + START_TIMEOUT_S
        while not (self._logged_running(since=log_start) and self._accepts()):
            if not self.running:
                code = self._reap()
                error = _PortTaken if "Address already in use" in self.log_tail() else BrokerError
                raise error(f"mosquitto exited with {code} on start\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.kill()
                raise BrokerError(
                    f"mosquitto did not accept on {self.url} within {START_TIMEOUT_S} s\n"
                    f"{self.log_tail()}"
                )
            time.sleep(0.01)

    def _logged_running(self, *, since: int) -> bool:
        # Logged after the listeners are open; guards against a probe answered by someone
        # else who took the port while this broker failed to bind it.
        if not self.log_file.exists():
            return False
        with self.log_file.open("rb") as log:
            log.seek(since)
            return b" running" in log.read()

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        """SIGTERM (mosquitto saves its database and exits) and wait; SIGKILL if it hangs."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
            try:
                self._process.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self._process.kill()
        self._reap()

    def kill(self) -> None:
        """SIGKILL: the broker vanishes without saving (its last autosave stays on disk)."""
        if self._process is None:
            return
        if self._process.poll() is None:
            self._process.kill()
        self._reap()

    def restart(self) -> None:
        """Stop, then start again on the same port with the same persistence database."""
        self.stop()
        self.start()

    def _reap(self) -> int | None:
        code = None
        if self._process is not None:
            code = self._process.wait(timeout=STOP_TIMEOUT_S)
            self._process = None
        if self._output is not None:
            self._output.close()
            self._output = None
        _STARTED.discard(self)
        return code


class AclMosquitto(Mosquitto):
    """A plain Mosquitto whose ACL lets anyone write only under `writable` (a topic filter,
    `allowed/#` unless changed before a start) and read everything."""

    writable = "allowed/#"

    def config_text(self) -> str:
        acl = self.workdir / "acl"
        acl.write_text(f"topic write {self.writable}\ntopic read #\n")
        return super().config_text() + f"acl_file {acl}\n"
