"""The container images and the compose file, checked without a container daemon (there is
none on the test machine): they install through the scripts `make install` uses, copy only
what exists, run the Procfile's commands, and fill the proxy template `make production`
renders."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
import yaml

from core.settings import ROOT, Settings
from scripts.production import NGINX_TEMPLATE, Counts, Topology, read_procfile

DEPLOY = ROOT / "deploy"
DOCKERFILES = {
    "platform": DEPLOY / "platform.Dockerfile",
    "assistant": DEPLOY / "assistant.Dockerfile",
}


def _instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(instruction, arguments) pairs, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    found = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, arguments = line.partition(" ")
            found.append((instruction.upper(), arguments.strip()))
    return found


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "compose.yaml").read_text())


def _shell_command(command: list[str]) -> str:
    """The command a `sh -c` list runs, without compose's `$$` escape."""
    assert command[:2] == ["sh", "-c"], command
    return command[2].replace("$$", "$")


def _procfile_command(kind: str) -> str:
    return f"exec {read_procfile()[kind]}"


@pytest.mark.parametrize("image", DOCKERFILES)
def test_every_file_an_image_copies_or_runs_is_in_the_repository(image):
    for instruction, arguments in _instructions(DOCKERFILES[image]):
        if instruction == "COPY" and not arguments.startswith("--from="):
            *sources, _destination = shlex.split(arguments)
            for source in sources:
                assert (ROOT / source).exists(), f"{image}: COPY {source} is missing"
        if instruction == "RUN" and arguments.startswith("scripts/"):
            script = ROOT / arguments.split()[0]
            assert script.exists() and script.stat().st_mode & 0o111, f"{image}: {script}"


def test_the_images_install_each_runtime_exactly_as_make_install_does():
    makefile = (ROOT / "Makefile").read_text()
    variables = dict(re.findall(r"^(\w+) := (\S+)$", makefile, flags=re.MULTILINE))
    make_installs = {
        re.sub(r"\$\((\w+)\)", lambda m: variables[m[1]], line.strip())
        for line in makefile.splitlines()
        if line.strip().startswith("scripts/install-env.sh")
    }
    image_installs = {
        arguments
        for dockerfile in DOCKERFILES.values()
        for instruction, arguments in _instructions(dockerfile)
        if instruction == "RUN" and arguments.startswith("scripts/install-env.sh")
    }
    assert image_installs == make_installs


def test_the_platform_image_installs_the_browser_assets_with_make_installs_script():
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^\tscripts/install-web-assets\.sh$", makefile, flags=re.MULTILINE)
    runs = [
        arguments
        for instruction, arguments in _instructions(DOCKERFILES["platform"])
        if instruction == "RUN" and arguments.startswith("scripts/install-web-assets.sh")
    ]
    # The image leaves out only what the browser tests use (the accessibility engine).
    assert runs == ["scripts/install-web-assets.sh --production"]


def test_each_image_runs_the_python_its_runtime_is_found_with():
    wanted = {"platform": "3.13", "assistant": "3.10"}
    finder = (ROOT / "scripts" / "find-python.sh").read_text()
    for image, version in wanted.items():
        # The last stage is the image that runs; earlier ones only build assets.
        base = [args for ins, args in _instructions(DOCKERFILES[image]) if ins == "FROM"][-1]
        assert base.startswith(f"python:{version}-"), base
        assert version in re.search(rf"{image}\) versions=\(([^)]*)\)", finder)[1]


def test_the_assistant_image_trains_with_the_script_make_run_uses():
    runs = [args for ins, args in _instructions(DOCKERFILES["assistant"]) if ins == "RUN"]
    assert "scripts/train-if-changed.sh" in runs


def test_compose_runs_the_procfile_commands():
    services = _compose()["services"]
    kinds = {"web": "web", "worker": "worker", "actions": "actions"}
    for service, kind in kinds.items():
        assert _shell_command(services[service]["command"]) == _procfile_command(kind)
    assistants = [name for name in services if name.startswith("assistant-")]
    assert len(assistants) >= 2
    for name in assistants:
        assert _shell_command(services[name]["command"]) == _procfile_command("assistant")
    assert _shell_command(services["migrate"]["command"]) == (
        "exec .venv/bin/python -m processes.migrate"
    )
    assert (ROOT / "processes" / "migrate.py").exists()


def test_the_images_default_commands_are_the_procfiles():
    expected = {"platform": "web", "assistant": "assistant"}
    for image, kind in expected.items():
        cmd = next(args for ins, args in _instructions(DOCKERFILES[image]) if ins == "CMD")
        assert _shell_command(yaml.safe_load(cmd)) == _procfile_command(kind)


def test_every_assistant_replica_is_one_the_platform_routes_to():
    compose = _compose()
    services = compose["services"]
    platform_env = services["web"]["environment"]
    routed = {url.split("//")[1].split(":")[0] for url in platform_env["BOT_URL"].split(",")}
    assert routed == {name for name in services if name.startswith("assistant-")}


def test_the_proxy_fills_the_template_make_production_renders():
    services = _compose()["services"]
    proxy = services["proxy"]
    mount = next(volume for volume in proxy["volumes"] if "/etc/nginx/templates/" in volume)
    assert (DEPLOY / mount.split(":")[0]).resolve() == NGINX_TEMPLATE
    placeholders = set(re.findall(r"\$\{([A-Z_]+)\}", NGINX_TEMPLATE.read_text()))
    local = Topology(Settings.from_env({}), Counts()).nginx_values(Path("c"), Path("k"))
    assert placeholders == set(local) == set(proxy["environment"])
    # Only the proxy publishes ports; the replicas trust its fixed address alone.
    published = [name for name, service in services.items() if "ports" in service]
    assert published == ["proxy"]
    address = proxy["networks"]["clinic"]["ipv4_address"]
    assert services["web"]["environment"]["TRUSTED_PROXIES"] == address


def test_the_images_never_copy_this_machines_environments_or_data():
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    for path in (".venv/", ".venv-rasa/", "var/", ".env"):
        assert path in ignored
