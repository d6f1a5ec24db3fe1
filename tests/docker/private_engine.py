"""A Docker engine of the test's own, to stop and start again without touching anyone else's.

The machine's engine is shared (other tests, other developers): a test never
stops it. :func:`private_engine` starts a second ``dockerd`` with everything
of its own under a temporary directory — data root, exec root (and so its own
containerd), pid file, a unix socket for the test and a TCP socket with TLS
for the plugin (certificates made here: a CA, a server certificate for
127.0.0.1, a client certificate) — a default bridge of its own (created here,
``-b``), no iptables rules and its own address pool, so it cannot disturb
the main engine's networks. (Never ``--bridge=none``: a dockerd started so
deletes the host's ``docker0``, which belongs to the main engine.)
Prediction servers are reached through published ports (the userland proxy).
The project's image is copied into it once (``docker save | docker load``).

:meth:`PrivateEngine.stop` and :meth:`PrivateEngine.start` are what a test
calls; at the end the engine's containers and networks are removed, the
daemon stopped and its directory deleted, whatever happened.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import ipaddress
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 60.0


@dataclass
class PrivateEngine:
    """A dockerd of the test's own."""

    root: Path
    tcp_port: int
    bridge: str
    process: subprocess.Popen[bytes] | None = None

    @property
    def socket(self) -> Path:
        """Its unix socket (for the test's own calls)."""
        return self.root / "docker.sock"

    @property
    def unix_url(self) -> str:
        """``unix://…`` of its socket."""
        return f"unix://{self.socket}"

    @property
    def tcp_url(self) -> str:
        """``tcp://127.0.0.1:PORT`` (TLS, client certificates required)."""
        return f"tcp://127.0.0.1:{self.tcp_port}"

    def tls(self) -> dict[str, str]:
        """``plugin_settings.engine.tls`` for :attr:`tcp_url`."""
        certs = self.root / "certs"
        return {"ca_cert": str(certs / "ca.pem"), "client_cert": str(certs / "cert.pem"),
                "client_key": str(certs / "key.pem")}  # fmt: skip

    def docker(self, *args: str, stdin: int | None = None) -> subprocess.CompletedProcess[bytes]:
        """The docker CLI against this engine (test set-up and inspection only)."""
        env = {**os.environ, "DOCKER_HOST": self.unix_url}
        return subprocess.run(["docker", *args], env=env, capture_output=True, stdin=stdin,
                              timeout=300, check=False)  # fmt: skip

    def start(self) -> None:
        """Start the daemon and wait until it answers."""
        certs = self.root / "certs"
        log = (self.root / "dockerd.log").open("ab")
        self.process = subprocess.Popen(
            ["dockerd", "--config-file", str(self.root / "daemon.json"),
             "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
             "--pidfile", str(self.root / "docker.pid"), "-H", self.unix_url,
             "-H", f"tcp://127.0.0.1:{self.tcp_port}", "--tlsverify",
             "--tlscacert", str(certs / "ca.pem"), "--tlscert", str(certs / "server-cert.pem"),
             "--tlskey", str(certs / "server-key.pem"), "--bridge", self.bridge, "--iptables=false",
             "--ip-masq=false"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        log.close()
        deadline = time.monotonic() + START_TIMEOUT_S
        while self.docker("version").returncode != 0:
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"private dockerd did not start:\n{self.log_tail()}")
            time.sleep(0.2)

    def stop(self) -> None:
        """SIGTERM the daemon (it stops its containers) and wait until it is gone."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)
        self.process = None

    def log_tail(self, lines: int = 30) -> str:
        """The end of the daemon's log."""
        path = self.root / "dockerd.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])

    def clean_up(self) -> None:
        """Remove its containers and networks, stop it, delete its directory."""
        if self.process is not None:
            ids = self.docker("ps", "-aq").stdout.decode().split()
            if ids:
                self.docker("rm", "-f", "-v", *ids)
            networks = self.docker("network", "ls", "-q", "--filter", "type=custom")
            for network in networks.stdout.decode().split():
                self.docker("network", "rm", network)
        self.stop()
        subprocess.run(["ip", "link", "delete", self.bridge], capture_output=True, check=False)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def private_engine(image: str) -> Iterator[PrivateEngine]:
    """A private engine holding ``image``; cleaned up after the block."""
    root = Path(tempfile.mkdtemp(prefix="pilothouse-dockerd-"))
    (root / "daemon.json").write_text("{}")
    _certificates(root / "certs")
    engine = PrivateEngine(root, _free_port(), _bridge())
    try:
        engine.start()
        save = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
        assert save.stdout is not None
        loaded = engine.docker("load", stdin=save.stdout.fileno())
        save.stdout.close()
        if save.wait(300) != 0 or loaded.returncode != 0:
            raise RuntimeError(f"cannot copy {image} into the private engine: {loaded.stderr!r}")
        yield engine
    finally:
        engine.clean_up()


def _bridge() -> str:
    """A bridge of the private engine's own (its default network), with an address of its own."""
    name = "phbr" + uuid.uuid4().hex[:8]
    subnet = 10 + uuid.uuid4().int % 200
    for command in (["ip", "link", "add", "name", name, "type", "bridge"],
                    ["ip", "addr", "add", f"10.214.{subnet}.1/24", "dev", name],
                    ["ip", "link", "set", name, "up"]):  # fmt: skip
        done = subprocess.run(command, capture_output=True, check=False)
        if done.returncode != 0:
            subprocess.run(["ip", "link", "delete", name], capture_output=True, check=False)
            raise RuntimeError(f"{' '.join(command)}: {done.stderr.decode(errors='replace')}")
    return name


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _certificates(out: Path) -> None:
    out.mkdir(parents=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pilothouse test CA")])
    ca = _sign(_builder(ca_name, ca_name, ca_key).add_extension(
        x509.BasicConstraints(ca=True, path_length=None), critical=True), ca_key)  # fmt: skip
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _sign(
        _builder(_cn("127.0.0.1"), ca_name, server_key)
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False),
        ca_key,
    )  # fmt: skip
    client_key = ec.generate_private_key(ec.SECP256R1())
    client = _sign(
        _builder(_cn("pilothouse agent"), ca_name, client_key).add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False),
        ca_key,
    )  # fmt: skip
    _write(out / "ca.pem", ca)
    _write(out / "server-cert.pem", server, server_key, out / "server-key.pem")
    _write(out / "cert.pem", client, client_key, out / "key.pem")


def _cn(name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])


def _builder(subject: x509.Name, issuer: x509.Name, key: ec.EllipticCurvePrivateKey) -> Any:
    now = dt.datetime.now(dt.UTC)
    return (
        x509.CertificateBuilder().subject_name(subject).issuer_name(issuer)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
    )  # fmt: skip


def _sign(builder: Any, key: ec.EllipticCurvePrivateKey) -> x509.Certificate:
    return builder.sign(key, hashes.SHA256())  # type: ignore[no-any-return]


def _write(
    path: Path, cert: x509.Certificate, key: ec.EllipticCurvePrivateKey | None = None,
    key_path: Path | None = None,
) -> None:  # fmt: skip
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    if key is not None and key_path is not None:
        key_path.write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))  # fmt: skip
