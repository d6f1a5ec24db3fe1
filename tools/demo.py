"""``make demo``, ``make demo-down``, ``make demo-clean``: the compose stack, from the host.

``up`` builds the image if needed (``tools/docker_image.sh``, cached: seconds; with the
``postgres`` profile PostgreSQL's image too, ``tools/postgres_image.sh``), brings the stack of
``docker-compose.yml`` up in the profile asked for (``sqlite``: one hub; ``postgres``:
PostgreSQL and two hub replicas; its ``setup`` registers everything, idempotently), waits
until a model served in a container the agent started answers a prediction, and prints where
the hub is, where the tokens are, and the ``curl`` that predicts.

``down`` stops the agent first (so it cannot start a server again), removes the server
containers it started and their volumes (by the ``io.pilothouse.owner`` label, which is the
project's name), then the stack's containers and network; the stack's named volumes stay,
so the next ``up`` resumes. ``clean`` removes those too.

Also the tests' handle on the stack (``tests/containers``): :class:`Stack` runs a project of
any name and profile on any hub port. Standard library only: the host needs nothing but Python.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
SOCKET = Path("/var/run/docker.sock")
OWNER_LABEL = "io.pilothouse.owner"
HUB_PORT = "8700"
POSTGRES_IMAGE = "pilothouse-postgres:15"
ADMIN_TOKEN = "/var/lib/pilothouse/hub/admin-token"
"""Where the hub keeps the admin token it generated, in its container (its volume)."""
SHARED_ADMIN_TOKEN = "/var/lib/pilothouse/secrets/admin-token"
"""Where the replicas of the ``postgres`` profile read their shared admin token."""
AGENT_TOKEN = "/run/pilothouse/agent-token"
"""Where the agent reads its token, in its container (the ``secrets`` volume)."""
DEPLOYMENT = "iris"
POLL_S = 0.1
"""Between two looks at the deployment while waiting for it to serve (a local hub's listing
costs milliseconds; the user waits for each interval)."""
SAMPLE = {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}


@dataclass(frozen=True)
class Profile:
    """A profile of ``docker-compose.yml``: which services play which part."""

    name: str
    project: str
    """The default project name (two profiles' stacks can run side by side)."""
    hubs: tuple[str, ...]
    """The hub services, the first one's port published on ``hub_port``."""
    setup: str
    agent: str
    admin_token: str
    """Where the admin token is, in the first hub's container."""


PROFILES = {
    "sqlite": Profile("sqlite", "pilothouse-demo", ("hub",), "setup", "agent", ADMIN_TOKEN),
    "postgres": Profile(
        name="postgres",
        project="pilothouse-demo-pg",
        hubs=("hub-a", "hub-b"),
        setup="pg-setup",
        agent="pg-agent",
        admin_token=SHARED_ADMIN_TOKEN,
    ),
}


def compose_command() -> list[str]:
    """Debian's ``docker-compose`` 1.29 if installed, else the ``docker compose`` plugin."""
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    return ["docker", "compose"]


def docker_gid() -> int:
    """The group of the Docker socket: the agent joins it instead of running as root."""
    try:
        return SOCKET.stat().st_gid
    except OSError as exc:
        raise SystemExit(f"demo: cannot read {SOCKET}: {exc.strerror}") from None


@dataclass
class Stack:
    """One compose project of ``docker-compose.yml``."""

    project: str = "pilothouse-demo"
    image: str = "pilothouse:latest"
    hub_port: str = HUB_PORT
    """The (first) hub's port on 127.0.0.1, the next port the second replica's; empty: any."""
    log: list[str] = field(default_factory=list)
    profile: Profile = PROFILES["sqlite"]
    postgres_image: str = POSTGRES_IMAGE

    def env(self) -> dict[str, str]:
        """The environment ``docker-compose.yml`` reads."""
        second = str(int(self.hub_port) + 1) if self.hub_port.isdigit() else self.hub_port
        return {
            **os.environ,
            "COMPOSE_PROJECT_NAME": self.project,
            "COMPOSE_PROFILES": self.profile.name,
            "PILOTHOUSE_IMAGE": self.image,
            "PILOTHOUSE_POSTGRES_IMAGE": self.postgres_image,
            "PILOTHOUSE_DOCKER_GID": str(docker_gid()),
            "PILOTHOUSE_DEMO_HUB_PORT": self.hub_port,
            "PILOTHOUSE_DEMO_HUB_B_PORT": second,
        }

    def compose(self, *args: str, check: bool = True, timeout: float = 300) -> str:
        """Run a compose command of this project; its stdout."""
        command = [*compose_command(), "-p", self.project, "-f", str(ROOT / "docker-compose.yml"),
                   *args]  # fmt: skip
        result = subprocess.run(
            command, cwd=ROOT, env=self.env(), capture_output=True, text=True, timeout=timeout,
            check=False,
        )  # fmt: skip
        self.log.append(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}")
        if check and result.returncode != 0:
            raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
        return result.stdout

    def up(self) -> None:
        """Bring the stack up; returns once ``setup`` has done its work."""
        self.compose("up", "-d", "--remove-orphans")
        setup = self.profile.setup
        code = self.container_state(setup).get("ExitCode")
        if code != 0:
            raise RuntimeError(f"{setup} exited {code}:\n{self.compose('logs', setup)}")

    def container_id(self, service: str) -> str:
        """The id of the service's container (running or not)."""
        # By the labels both compose flavours set, with the docker CLI: it answers in
        # milliseconds, where each compose command starts a Python program (Debian's
        # docker-compose: seconds on a loaded machine, and `make demo` asked several).
        found = docker(
            "ps", "-a", "-q",
            "--filter", f"label=com.docker.compose.project={self.project}",
            "--filter", f"label=com.docker.compose.service={service}",
            "--filter", "label=com.docker.compose.oneoff=False",
        ).split()  # fmt: skip
        if not found:
            raise RuntimeError(f"no container of service {service}")
        return found[0]

    def container_state(self, service: str) -> dict[str, Any]:
        """``docker inspect``'s State of the service's container (running or not)."""
        return dict(docker_json("inspect", self.container_id(service))[0]["State"])

    def hub_url(self, service: str | None = None) -> str:
        """A hub (the first one) on 127.0.0.1, on the port the engine published."""
        published = docker("port", self.container_id(service or self.profile.hubs[0]), HUB_PORT)
        return f"http://127.0.0.1:{published.split()[0].rsplit(':', 1)[-1]}"

    def admin_token(self) -> str:
        """The admin token: generated by the hub in its volume, or shared by the replicas."""
        hub = self.container_id(self.profile.hubs[0])
        return docker("exec", hub, "cat", self.profile.admin_token).strip()

    def servers(self, *, running_only: bool = False) -> list[str]:
        """The ids of the containers the stack's agent started (by owner label)."""
        args = ["ps", "-q", "--filter", f"label={OWNER_LABEL}={self.project}"]
        return docker(*(args if running_only else [*args, "-a"])).split()

    def down(self) -> None:
        """Stop the stack, remove the servers the agent started; keep the named volumes."""
        self.compose("stop", self.profile.agent, check=False)
        servers = self.servers()
        if servers:
            docker("rm", "-f", "-v", *servers)
        volumes = docker("volume", "ls", "-q", "--filter", f"label={OWNER_LABEL}={self.project}")
        if volumes.split():
            docker("volume", "rm", "-f", *volumes.split())
        self.compose("down", "--remove-orphans")

    def clean(self) -> None:
        """:meth:`down`, and remove the stack's named volumes too."""
        self.down()
        self.compose("down", "-v", "--remove-orphans")


def docker(*args: str) -> str:
    """Run a ``docker`` command; its stdout."""
    result = subprocess.run(["docker", *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"docker {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def docker_json(*args: str) -> Any:
    """A ``docker`` command's JSON output."""
    return json.loads(docker(*args))


def hub_get(url: str, token: str, path: str) -> Any:
    """GET a hub API path as the admin."""
    request = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def predict(prediction_url: str, rows: list[dict[str, Any]]) -> Any:
    """POST rows to a deployment's prediction URL; the answer."""
    body = json.dumps({"rows": rows}).encode()
    request = urllib.request.Request(
        prediction_url, data=body, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def served(url: str, token: str, name: str, timeout: float) -> dict[str, Any]:
    """The deployment ``name`` once its prediction URL answers; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    last: object = "the deployment does not exist yet"
    while time.monotonic() < deadline:
        try:
            for dep in hub_get(url, token, "/api/v1/deployments?limit=500")["items"]:
                observed = dep["observed"]
                if dep["name"] == name and observed["state"] == "ready":
                    predict(observed["prediction_url"], [SAMPLE])
                    return dict(dep)
                if dep["name"] == name:
                    last = f"state {observed['state']}"
        except (OSError, urllib.error.URLError, KeyError, ValueError) as exc:
            last = exc
        time.sleep(POLL_S)
    raise RuntimeError(f"deployment {name} did not serve within {timeout:.0f} s: {last}")


def build_image(image: str) -> None:
    """The image, built or found up to date by ``tools/docker_image.sh`` (cached)."""
    pip = os.environ.get("PIP") or str(Path(sys.executable).with_name("pip"))
    env = {**os.environ, "IMAGE": image, "PIP": pip}
    subprocess.run(["bash", str(ROOT / "tools" / "docker_image.sh")], cwd=ROOT, env=env,
                   check=True)  # fmt: skip


def build_postgres_image(image: str) -> None:
    """PostgreSQL's image, built or found up to date by ``tools/postgres_image.sh``."""
    env = {**os.environ, "POSTGRES_IMAGE": image}
    subprocess.run(["bash", str(ROOT / "tools" / "postgres_image.sh")], cwd=ROOT, env=env,
                   check=True)  # fmt: skip


def up(stack: Stack, *, wait_s: float) -> None:
    """Build, bring up, wait for a prediction, print where everything is."""
    started = time.monotonic()
    build_image(stack.image)
    if stack.profile.name == "postgres":
        build_postgres_image(stack.postgres_image)
    built = time.monotonic()
    stack.up()
    set_up = time.monotonic()
    url, token = stack.hub_url(), stack.admin_token()
    dep = served(url, token, DEPLOYMENT, wait_s)
    done = time.monotonic()
    prediction_url = dep["observed"]["prediction_url"]
    profile = stack.profile
    compose = " ".join([*compose_command(), "-p", stack.project, "--profile", profile.name])
    hubs = ", ".join(f"{hub} at {stack.hub_url(hub)}" for hub in profile.hubs)
    print(f"""
demo: images {built - started:.1f} s, stack up to the first prediction {done - built:.1f} s \
(setup done after {set_up - built:.1f} s)
demo: {hubs} (web UI at {url}/)
demo: admin token: `{compose} exec {profile.hubs[0]} cat {profile.admin_token}`
demo: agent token: {AGENT_TOKEN} in the agent's container (volume {stack.project}_secrets)
demo: deployment {DEPLOYMENT} is served by container(s) {", ".join(stack.servers(running_only=True))}; try:
  curl -s -X POST {prediction_url} -H 'Content-Type: application/json' \\
    -d '{json.dumps({"rows": [SAMPLE]})}'
demo: `make demo-down` stops it all (volumes kept); `make demo-clean` removes the volumes too
""")  # noqa: E501


def main(argv: list[str] | None = None) -> int:
    """``python tools/demo.py up|down|clean``."""
    parser = argparse.ArgumentParser(
        prog="python tools/demo.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("action", choices=["up", "down", "clean"])
    parser.add_argument(
        "--profile", choices=sorted(PROFILES), default=os.environ.get("PROFILE") or "sqlite"
    )
    parser.add_argument("--project", default=os.environ.get("PROJECT"))
    parser.add_argument("--image", default=os.environ.get("IMAGE", "pilothouse:latest"))
    parser.add_argument(
        "--postgres-image", default=os.environ.get("POSTGRES_IMAGE", POSTGRES_IMAGE)
    )
    parser.add_argument("--hub-port", default=os.environ.get("HUB_PORT", HUB_PORT))
    parser.add_argument("--wait-s", type=float, default=180.0)
    args = parser.parse_args(argv)
    profile = PROFILES[args.profile]
    stack = Stack(
        args.project or profile.project, args.image, args.hub_port, profile=profile,
        postgres_image=args.postgres_image,
    )  # fmt: skip
    try:
        if args.action == "up":
            up(stack, wait_s=args.wait_s)
        elif args.action == "down":
            stack.down()
        else:
            stack.clean()
    except (RuntimeError, subprocess.CalledProcessError) as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
