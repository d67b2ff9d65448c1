"""The generated service on Docker Swarm: `docker stack deploy -c docker-stack.yml`, three
replicas of the built image sharing one port with host networking and REUSE_PORT.

Under a steady load of requests, each on a new connection, and one keep-alive client,
the test rolls the service over to a new image, stops one replica's container
(`docker stop`), then kills another (`docker kill --signal KILL`):

- the rolling update and the stop lose no request, the update converges, and Swarm
  replaces the stopped replica; every replica answers;
- the kill loses at most the requests that were in flight at that instant, and Swarm
  replaces it.

Connections the kernel had queued on a closing listener are handed to another replica
only with the host sysctl net.ipv4.tcp_migrate_req=1; the scenario runs with it on, where
it must lose nothing, and off, where what it loses is measured and printed. The sysctl is
restored afterwards, the swarm left as it was found, and what was deployed and built is
removed. The figures (requests, failures, per replica, durations, what the keep-alive
client saw) are printed in the Docker section of the terminal summary.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import yaml
from docker_helpers import SKIP_REASONS, free_port, generate_service, run

MIGRATE_SYSCTL = Path("/proc/sys/net/ipv4/tcp_migrate_req")
REQUEST_TIMEOUT = 5  # seconds; a request that gets no answer in time counts as failed
LOAD_THREADS = 2  # clients opening a new connection for each request
PAUSE = 0.1  # seconds each client waits between two requests
MAX_REQUESTS = 5000  # per client: the load stays bounded whatever happens
# The states a service update settles in (`docker service inspect`, UpdateStatus.State).
UPDATE_ENDED = ("completed", "paused", "rollback_completed", "rollback_paused")

# Which replica answered: Swarm fills in the task's id (the test's own stack file).
WHOAMI_VIEW = '''

def whoami(request: Requests, response: Response) -> None:
    """GET /whoami: the Swarm task that answers (added by the Swarm test)."""
    import os

    response.sendJson({"task": os.environ.get("TASK_ID", "")})
'''
WHOAMI_ROUTE = """
urlpatterns.append(Path(r"^/whoami$", views.whoami, name="whoami", methods=["GET"]))
"""
# On top of docker-stack.yml (in its format version): loopback only, a free port, the task
# id for /whoami.
TEST_STACK = """\
version: "{version}"
services:
  app:
    environment:
      HOST: 127.0.0.1
      PORT: "{port}"
      TASK_ID: "{{{{.Task.ID}}}}"
"""


# ==================================================================== the stack file


def stack_config(stack_file: Path, **shell: str) -> dict:
    """`docker stack config`: the file as `docker stack deploy` reads it (no engine needed)."""
    if shutil.which("docker") is None:
        pytest.skip("`docker stack config` needs the docker command, which is not installed")
    result = run(["docker", "stack", "config", "-c", str(stack_file)],
                 env={**os.environ, **shell})
    return yaml.safe_load(result.stdout)


def seconds(duration: str) -> float:
    """A duration as Docker writes them: 20s, 1m30s, 500ms."""
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, duration
    return sum(float(number) * units[unit] for number, unit in parts)


def test_stack_file_is_what_docker_stack_deploy_reads(tmp_path):
    project_dir = generate_service(tmp_path)
    config = stack_config(project_dir / "docker-stack.yml", IMAGE="registry/app:2", PORT="9000")
    app = config["services"]["app"]
    environment = app["environment"]
    # IMAGE and PORT from the shell pick the version and the port.
    assert (app["image"], environment["PORT"]) == ("registry/app:2", "9000")
    # The replicas share the port of the node's own network.
    assert environment["REUSE_PORT"] == "true"
    assert list(app["networks"]) == ["host"]
    assert config["networks"]["host"] == {"name": "host", "external": True}
    # A new replica starts before an old one stops; a failed one rolls the update back.
    update = app["deploy"]["update_config"]
    assert (update["order"], update["failure_action"]) == ("start-first", "rollback")
    # `docker stop` (exit 0) is replaced too.
    assert app["deploy"]["restart_policy"]["condition"] == "any"


def test_stack_grace_period_outlasts_the_drain_and_the_graceful_timeout(tmp_path):
    app = stack_config(generate_service(tmp_path) / "docker-stack.yml")["services"]["app"]
    drain = seconds(app["environment"]["DRAIN_DELAY"] + "s")
    graceful = seconds(app["environment"]["GRACEFUL_TIMEOUT"] + "s")
    assert app["stop_signal"] == "SIGTERM"
    assert seconds(app["stop_grace_period"]) > drain + graceful


def test_stack_health_check_is_the_dockerfiles_on_livez(tmp_path):
    """Swarm replaces a task that fails its health check: that makes it a liveness check."""
    project_dir = generate_service(tmp_path)
    dockerfile = (project_dir / "Dockerfile").read_text()
    command = json.loads(re.search(r"^\s+CMD (\[.*\])$", dockerfile, re.MULTILINE).group(1))
    app = stack_config(project_dir / "docker-stack.yml")["services"]["app"]
    livez = [part.replace("'/healthz'", "'/livez'") for part in command]
    assert livez != command  # the Dockerfile's check names /healthz
    assert app["healthcheck"]["test"] == ["CMD", *livez]


# ==================================================================== the engine


@pytest.fixture(scope="module")
def swarm():
    """A swarm on the engine: the one it is in, or one made here and left at the end."""
    state = run(["docker", "info", "--format", "{{.Swarm.LocalNodeState}}"]).stdout.strip()
    created = False
    if state == "inactive":
        result = run(["docker", "swarm", "init", "--advertise-addr", "127.0.0.1"], check=False)
        if result.returncode != 0:
            lines = (result.stderr or result.stdout).strip().splitlines() or ["no output"]
            reason = f"the Docker engine cannot run Swarm: `docker swarm init`: {lines[-1]}"
            SKIP_REASONS.add(reason)
            pytest.skip(reason)
        created = True
    elif state != "active":
        reason = f"the Docker engine's swarm is {state!r}, neither active nor inactive"
        SKIP_REASONS.add(reason)
        pytest.skip(reason)
    try:
        yield
    finally:
        if created:
            run(["docker", "swarm", "leave", "--force"], check=False)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    """The generated service with GET /whoami, built, and the same image as a new version."""
    project_dir = generate_service(tmp_path_factory.mktemp("swarm"))
    with open(project_dir / "views.py", "a") as views:
        views.write(WHOAMI_VIEW)
    with open(project_dir / "urls.py", "a") as urls:
        urls.write(WHOAMI_ROUTE)
    name = f"swarm-test-{uuid.uuid4().hex[:8]}"
    first, second = f"{name}:1", f"{name}:2"
    try:
        run(["docker", "build", "--quiet", "--network", "host", "-t", first, str(project_dir)])
        run(["docker", "tag", first, second])
        yield project_dir, first, second
    finally:
        run(["docker", "image", "rm", "--force", first, second], check=False)


@pytest.fixture(params=[1, 0], ids=["tcp_migrate_req=1", "tcp_migrate_req=0"])
def tcp_migrate_req(request):
    """net.ipv4.tcp_migrate_req set for the test (the containers share the host's network),
    then restored."""
    if not MIGRATE_SYSCTL.exists():
        reason = "this kernel has no net.ipv4.tcp_migrate_req (Linux 5.14+)"
        SKIP_REASONS.add(reason)
        pytest.skip(reason)
    found = MIGRATE_SYSCTL.read_text().strip()
    try:
        MIGRATE_SYSCTL.write_text(f"{request.param}\n")
    except OSError as error:
        reason = f"cannot set net.ipv4.tcp_migrate_req: {error.strerror}"
        SKIP_REASONS.add(reason)
        pytest.skip(reason)
    try:
        yield request.param
    finally:
        MIGRATE_SYSCTL.write_text(f"{found}\n")


class Stack:
    """One stack deployed from the generated docker-stack.yml and the test's own file."""

    def __init__(self, project_dir: Path, workdir: Path) -> None:
        self.project_dir = project_dir
        self.name = f"t{uuid.uuid4().hex[:10]}"
        self.service = f"{self.name}_app"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/whoami"
        self.test_file = workdir / f"stack.{self.name}.yml"
        version = yaml.safe_load((project_dir / "docker-stack.yml").read_text())["version"]
        self.test_file.write_text(TEST_STACK.format(version=version, port=self.port))

    def deploy(self, image: str) -> None:
        """`docker stack deploy` (again, for an update) with this image; does not wait."""
        run(
            ["docker", "stack", "deploy", "--resolve-image", "never", "--detach=true",
             "-c", str(self.project_dir / "docker-stack.yml"), "-c", str(self.test_file),
             self.name],
            env={**os.environ, "IMAGE": image},
        )

    def remove(self) -> None:
        run(["docker", "stack", "rm", self.name], check=False)
        label = f"label=com.docker.stack.namespace={self.name}"
        wait_for(lambda: not run(["docker", "ps", "-aq", "--filter", label]).stdout.strip(),
                 60, "the stack's containers to be removed")

    def running(self) -> dict[str, str]:
        """The tasks that run and are healthy: task id -> container id."""
        ids = run(["docker", "service", "ps", "--quiet", "--no-trunc",
                   "--filter", "desired-state=running", self.service]).stdout.split()
        tasks = {}
        for line in _inspect_lines(
            ids, "{{.ID}} {{.Status.State}} {{.Status.ContainerStatus.ContainerID}}"
        ):
            task, state, *container = line.split() or ["", ""]
            if state == "running" and container and _healthy(container[0]):
                tasks[task] = container[0]
        return tasks

    def update_state(self) -> str:
        template = "{{if .UpdateStatus}}{{.UpdateStatus.State}}{{end}}"
        return run(["docker", "service", "inspect", "-f", template, self.service]).stdout.strip()

    def wait_replicas(self, without: set[str] = frozenset()) -> dict[str, str]:
        """Wait until 3 tasks run, healthy, none of them in ``without``; they are returned."""
        found: dict[str, str] = {}

        def three_running() -> bool:
            nonlocal found
            found = self.running()
            return len(found) == 3 and not found.keys() & without

        wait_for(three_running, 120, f"3 healthy replicas of {self.service}")
        return found


def _inspect_lines(ids: list[str], template: str) -> list[str]:
    if not ids:
        return []
    result = run(["docker", "inspect", "--type", "task", "-f", template, *ids], check=False)
    return result.stdout.splitlines()  # a task removed meanwhile is left out


def _healthy(container: str) -> bool:
    template = "{{if .State.Health}}{{.State.Health.Status}}{{end}}"
    result = run(["docker", "inspect", "-f", template, container], check=False)
    return result.stdout.strip() == "healthy"


def wait_for(condition, timeout: float, what: str) -> None:
    """Poll ``condition`` (it asks the engine) until it is true; fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting for {what}"
        time.sleep(0.2)


@pytest.fixture
def stack(swarm, images, tmp_path):
    project_dir, first, _ = images
    deployed = Stack(project_dir, tmp_path)
    try:
        deployed.deploy(first)
        yield deployed
    finally:
        deployed.remove()


# ==================================================================== the clients


@dataclass
class Outcome:
    started: float
    ended: float
    task: str | None = None  # the replica that answered
    error: str | None = None  # why it failed
    closed: bool = False  # the answer said `Connection: close`


class Client(threading.Thread):
    """GETs ``url`` one request after another until stopped, recording each outcome.

    A new connection for each request, or (``keep_alive``) one session that keeps its
    connection, as a browser or a service calling another would: it opens a new one only
    when the server closed it (the `Connection: close` of a draining replica). Failures
    are not retried: what a client without retries would see.
    """

    def __init__(self, url: str, keep_alive: bool) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.keep_alive = keep_alive
        self.outcomes: list[Outcome] = []
        self.in_flight: float | None = None  # when the request on its way started
        self.stopping = threading.Event()

    def run(self) -> None:
        session = self._session()
        while not self.stopping.is_set() and len(self.outcomes) < MAX_REQUESTS:
            if not self.keep_alive:
                session.close()
                session = self._session()
            self.outcomes.append(self._get(session))
            self.stopping.wait(PAUSE)
        session.close()

    def _session(self) -> requests.Session:
        session = requests.Session()
        session.trust_env = False  # straight to 127.0.0.1, whatever proxy the shell names
        if not self.keep_alive:
            session.headers["Connection"] = "close"
        return session

    def _get(self, session: requests.Session) -> Outcome:
        started = self.in_flight = time.monotonic()
        try:
            response = session.get(self.url, timeout=REQUEST_TIMEOUT)
        except requests.RequestException as error:
            outcome = Outcome(started, time.monotonic(), error=_reason(error))
        else:
            outcome = Outcome(started, time.monotonic())
            outcome.closed = response.headers.get("Connection", "").lower() == "close"
            if response.status_code == 200:
                outcome.task = response.json()["task"]
            else:
                outcome.error = f"HTTP {response.status_code}"
        self.in_flight = None
        return outcome

    def stop(self) -> None:
        self.stopping.set()
        self.join(REQUEST_TIMEOUT + 5)
        assert not self.is_alive(), "a client did not stop"


def _reason(error: requests.RequestException) -> str:
    """The innermost cause, in one line: ConnectionResetError, RemoteDisconnected..."""
    cause: BaseException = error
    while True:
        inner = cause.__context__ or cause.__cause__ or (cause.args[0] if cause.args else None)
        if not isinstance(inner, BaseException):
            break
        cause = inner
    return type(cause).__name__


class Load:
    """The new-connection clients and the keep-alive client, each on its own thread."""

    def __init__(self, url: str) -> None:
        self.fresh = [Client(url, keep_alive=False) for _ in range(LOAD_THREADS)]
        self.keep_alive = Client(url, keep_alive=True)

    def __enter__(self) -> Load:
        for client in [*self.fresh, self.keep_alive]:
            client.start()
        return self

    def __exit__(self, *exc_info) -> None:
        for client in [*self.fresh, self.keep_alive]:
            client.stop()

    def in_flight(self) -> int:
        """New-connection requests on their way right now."""
        return sum(client.in_flight is not None for client in self.fresh)

    def outcomes(self, clients: list[Client], since: float, until: float) -> list[Outcome]:
        """The outcomes of the requests that started in [since, until)."""
        return [
            outcome
            for client in clients
            for outcome in client.outcomes
            if since <= outcome.started < until
        ]


def summary(outcomes: list[Outcome]) -> str:
    failures = Counter(outcome.error for outcome in outcomes if outcome.error)
    answered = Counter(outcome.task[:6] for outcome in outcomes if outcome.task)
    failed = sum(failures.values())
    text = f"{len(outcomes)} requests, {failed} failed"
    if failures:
        text += " (" + ", ".join(f"{count} {why}" for why, count in failures.items()) + ")"
    per_replica = ", ".join(f"{task} {count}" for task, count in sorted(answered.items()))
    return f"{text}; answered by {len(answered)} replicas: {per_replica}"


# ==================================================================== the scenario


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.timeout(900)
def test_rolling_update_stop_and_kill_under_load(stack, images, tcp_migrate_req, figures):
    _, _, second_image = images
    before = stack.wait_replicas()
    seen = run(["docker", "exec", next(iter(before.values())), "cat", str(MIGRATE_SYSCTL)])
    assert seen.stdout.strip() == str(tcp_migrate_req), "the replicas are not on the host's network"

    with Load(stack.url) as load:
        # Every replica answers before anything happens to it.
        wait_for(lambda: _answered(load, before), 60, "every replica to answer")
        update_started = time.monotonic()
        stack.deploy(second_image)
        wait_for(lambda: stack.update_state() in UPDATE_ENDED, 300, "the rolling update to end")
        update_state = stack.update_state()
        updated = stack.wait_replicas(without=set(before))
        wait_for(lambda: _answered(load, updated), 60, "every new replica to answer")
        update_ended = time.monotonic()

        # `docker stop` of one replica's container: Swarm starts another.
        stopped_task, stopped_container = _keep_alive_replica(load, updated)
        run(["docker", "stop", stopped_container])
        replaced = stack.wait_replicas(without={stopped_task})
        wait_for(lambda: _answered(load, replaced), 60, "the stopped replica's successor")
        stop_ended = time.monotonic()

        # kill -9 of another: only the requests in flight on it at that instant may fail.
        killed_task, killed_container = _keep_alive_replica(load, replaced)
        on_their_way = load.in_flight()
        kill_started = time.monotonic()
        run(["docker", "kill", "--signal", "KILL", killed_container])
        run(["docker", "wait", killed_container])  # it has exited: its sockets are closed
        kill_ended = time.monotonic()
        after_kill = stack.wait_replicas(without={killed_task})
        wait_for(lambda: _answered(load, after_kill), 60, "the killed replica's successor")
        scenario_ended = time.monotonic()

    label = f"Swarm, tcp_migrate_req={tcp_migrate_req}"
    phases = {
        "rolling update": (update_started, update_ended),
        "docker stop": (update_ended, stop_ended),
        "kill -9": (stop_ended, scenario_ended),
    }
    clients = {"new connections": load.fresh, "keep-alive client": [load.keep_alive]}
    for phase, (since, until) in phases.items():
        for kind, group in clients.items():
            figures[f"{label}, {phase} ({until - since:.1f} s), {kind}"] = summary(
                load.outcomes(group, since, until)
            )
    closed = sum(outcome.closed for outcome in load.keep_alive.outcomes)
    figures[f"{label}, keep-alive client"] = (
        f"{len(load.keep_alive.outcomes)} requests, {closed} answered with Connection: close "
        "(a draining replica; the client opened a new connection for its next request)"
    )
    # In flight at the kill: started before the container had exited, not done when the
    # kill was sent (the instant of death lies in between).
    in_flight = {
        kind: [o for o in load.outcomes(group, stop_ended, kill_ended) if o.ended > kill_started]
        for kind, group in clients.items()
    }
    figures[f"{label}, kill -9 ({kill_ended - kill_started:.2f} s until exited)"] = "; ".join(
        f"{kind}: {len(outcomes)} in flight, {sum(bool(o.error) for o in outcomes)} failed"
        for kind, outcomes in in_flight.items()
    ) + f" ({on_their_way} new-connection requests on their way when the kill was sent)"

    assert update_state == "completed", f"the update ended {update_state!r}"
    # Each replica the update or the stop replaced stopped gracefully.
    for container in [*before.values(), stopped_container]:
        assert run(["docker", "inspect", "-f", "{{.State.ExitCode}}", container]).stdout == "0\n"
    # Every replica answered: the first three, the update's three, the replacements.
    for tasks in (before, updated, replaced, after_kill):
        assert _answered(load, tasks)
    for kind, group in clients.items():
        # Only the killed replica's requests may fail, when the kernel migrates the queue
        # of a closing listener (without it, those connections are reset: measured above).
        if tcp_migrate_req == 1:
            for phase in ("rolling update", "docker stop"):
                since, until = phases[phase]
                outcomes = load.outcomes(group, since, until)
                when = [f"{o.error} at +{o.started - since:.2f} s" for o in outcomes if o.error]
                assert not when, f"{phase}, {kind}: {summary(outcomes)}: {', '.join(when)}"
        failed = [o for o in load.outcomes(group, *phases["kill -9"]) if o.error]
        assert all(any(o is f for o in in_flight[kind]) for f in failed), (
            f"kill -9, {kind}: failures beyond the requests in flight: {summary(failed)}"
        )


def _keep_alive_replica(load: Load, tasks: dict[str, str]) -> tuple[str, str]:
    """The task the keep-alive client talks to if it is one of these, else any of them:
    what happens to a replica then happens to its keep-alive client too."""
    answers = [outcome.task for outcome in list(load.keep_alive.outcomes) if outcome.task]
    task = answers[-1] if answers and answers[-1] in tasks else next(iter(tasks))
    return task, tasks[task]


def _answered(load: Load, tasks: dict[str, str]) -> bool:
    """Each of these tasks has answered a new-connection request."""
    answered = {outcome.task for client in load.fresh for outcome in client.outcomes}
    return set(tasks) <= answered
