"""docker/ read as an operator's tools read it (no Docker engine runs here): the build context
`.dockerignore` leaves, the base images pinned by digest, the lock the image installs, the
compose file's secrets, sign-in settings, published ports and health check. The image is built
and run from these files, outside a container, by tests/test_container.py."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
import yaml

from tests.live import ROOT

DOCKERFILE = ROOT / "docker" / "Dockerfile"
COMPOSE = ROOT / "docker" / "compose.yaml"
DOCKERIGNORE = ROOT / ".dockerignore"
DIGEST = re.compile(r"^[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}$")


def instructions() -> list[tuple[str, str]]:
    """The Dockerfile's instructions, continuation lines joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [tuple(line.split(None, 1)) for line in lines if line and not line.startswith("#")]


def stage_instructions(stage: str) -> list[tuple[str, str]]:
    found, current = [], None
    for keyword, rest in instructions():
        if keyword == "FROM":
            current = rest.split()[-1]
        elif current == stage:
            found.append((keyword, rest))
    return found


def image_environment() -> dict[str, str]:
    env = {}
    for keyword, rest in instructions():
        if keyword == "ENV":
            env |= dict(pair.split("=", 1) for pair in rest.split())
    return env


def entrypoint() -> list[str]:
    return next(json.loads(rest) for keyword, rest in instructions() if keyword == "ENTRYPOINT")


def _pattern(pattern: str) -> re.Pattern[str]:
    """A .dockerignore pattern (Go's filepath.Match, plus `**`) as a regular expression."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def ignored(path: str) -> bool:
    """Whether Docker leaves `path` (relative to the context) out: the last pattern that
    matches it or one of its parent folders decides; a `!` pattern takes it back in."""
    lines = [line.strip() for line in DOCKERIGNORE.read_text().splitlines()]
    parts = path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    verdict = False
    for line in (line for line in lines if line and not line.startswith("#")):
        keep = line.startswith("!")
        regex = _pattern(line.lstrip("!").strip("/"))
        if any(regex.match(prefix) for prefix in prefixes):
            verdict = not keep
    return verdict


def build_context(root: Path = ROOT) -> list[str]:
    """The files Docker sends as the build context: everything .dockerignore keeps. A folder
    left out is not walked unless a `!` pattern names something inside it."""
    exceptions = [
        line[1:].strip("/") for line in DOCKERIGNORE.read_text().splitlines() if line[:1] == "!"
    ]
    kept = []
    for folder, folders, files in os.walk(root):
        here = Path(folder).relative_to(root).as_posix()
        prefix = "" if here == "." else here + "/"
        folders[:] = [
            name
            for name in folders
            if not ignored(prefix + name)
            or any(e.startswith(prefix + name + "/") for e in exceptions)
        ]
        kept += [prefix + name for name in files if not ignored(prefix + name)]
    return sorted(kept)


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        "var/dev-signing-key.json",
        "var/cpl-pathways.db",
        "tests/browser/node_modules/playwright-core/package.json",
        "node_modules/x/index.js",
        ".git/HEAD",
        ".pytest_cache/README.md",
        ".ruff_cache/CACHEDIR.TAG",
        ".mypy_cache/3.11/x.json",
        ".hypothesis/examples/x",
        "config/__pycache__/settings.cpython-311.pyc",
        "docker/session-secret",
        "docker/.env",
        "requirements/dev.txt",
        "tests/test_container.py",
        "bench/results/x.json",
    ],
)
def test_dockerignore_leaves_out(path):
    assert ignored(path), f".dockerignore would send {path} to the Docker daemon"


def test_dockerignore_keeps_every_file_the_dockerfile_copies():
    context = build_context()
    for keyword, rest in stage_instructions("build"):
        if keyword != "COPY":
            continue
        *sources, _target = rest.split()
        for source in sources:
            found = [p for p in context if p == source or p.startswith(source.rstrip("/") + "/")]
            assert found, f"COPY {source}: .dockerignore leaves it out of the context"
    assert "server/cli.py" in context and "pyproject.toml" in context
    assert not [p for p in context if p.startswith(("tests/", ".venv/", "var/", ".git/"))]


def test_the_dockerfile_builds_in_stages_and_runs_as_no_root():
    stages = [rest for keyword, rest in instructions() if keyword == "FROM"]
    assert [s.split()[-1] for s in stages] == ["build", "runtime"]
    keywords = dict(instructions())
    assert keywords["USER"] != "root" and keywords["USER"] != "0"
    assert "/livez" in keywords["HEALTHCHECK"] and keywords["STOPSIGNAL"] == "SIGTERM"
    runtime = DOCKERFILE.read_text().split("AS runtime", 1)[1]
    assert "COPY " not in runtime  # only the built wheels reach the runtime, by a bind mount
    assert "[test]" not in DOCKERFILE.read_text()


def test_the_base_images_are_pinned_by_digest_and_the_same():
    images = {rest.split()[0] for keyword, rest in instructions() if keyword == "FROM"}
    assert len(images) == 1, f"the two stages start from different images: {images}"
    image = images.pop()
    assert DIGEST.match(image), f"{image} is not pinned by a sha256 digest"
    assert image.startswith("python:3.11"), image  # the Python the lock was compiled for


def test_the_image_installs_the_lock_with_its_hashes():
    build = " ".join(rest for keyword, rest in stage_instructions("build") if keyword == "RUN")
    runtime = " ".join(rest for keyword, rest in stage_instructions("runtime") if keyword == "RUN")
    assert "--require-hashes" in build and "-r requirements/run.txt" in build
    assert "--no-index" in build  # the project's wheel is built with the locked setuptools
    assert "--require-hashes" in runtime and "--no-index" in runtime
    assert "--no-deps /wheels/cpl_pathways-" in runtime  # its dependencies come from the lock


def test_the_health_check_knocks_where_serve_listens():
    keywords = dict(instructions())
    check = json.loads(keywords["HEALTHCHECK"].split("CMD", 1)[1])
    assert "os.environ['CPL_PORT']" in check[-1], "the health check's port is not CPL_PORT's"
    assert image_environment()["CPL_PORT"] == "8000"
    command = json.loads(keywords["CMD"])
    assert command[0] == "serve" and "--port" not in command  # serve's --port defaults to it
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    assert "--port" not in services["api"]["command"]
    assert services["api"]["environment"]["CPL_PORT"] == "8000"
    published = services["api"]["ports"][0].rsplit(":", 1)[1]
    assert published == services["api"]["environment"]["CPL_PORT"]


def test_compose_pins_every_image_it_pulls_by_digest():
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    built = {s["image"] for s in services.values() if "build" in s}
    for name, service in services.items():
        if service["image"] not in built:
            assert DIGEST.match(service["image"]), f"{name}: {service['image']} has no digest"


def test_compose_publishes_nothing_beyond_loopback():
    """/metrics answers on the API's port: nothing of it is published on a public interface."""
    services = yaml.safe_load(COMPOSE.read_text())["services"]
    for name, service in services.items():
        for port in service.get("ports", []):
            assert isinstance(port, str) and port.startswith("127.0.0.1:"), (name, port)
    assert "ports" not in services["db"]


def test_compose_passes_sign_in_and_the_session_secret_from_a_file():
    compose = yaml.safe_load(COMPOSE.read_text())
    services = compose["services"]
    env = services["api"]["environment"]
    for name in ("CPL_OIDC_ISSUER", "CPL_OIDC_CLIENT_ID", "CPL_OIDC_CLIENT_SECRET"):
        assert env[name] == f"${{{name}:-}}", f"compose does not pass {name} through"
    assert env["CPL_PUBLIC_URL"] == "${CPL_PUBLIC_URL:-}"
    assert "CPL_SESSION_SECRET" not in env  # never in the environment `docker inspect` shows
    secret = env["CPL_SESSION_SECRET_FILE"]
    assert secret == "/run/secrets/session_secret"
    assert compose["secrets"]["session_secret"]["file"].startswith("${CPL_SESSION_SECRET_FILE:?")
    # Every process that reads the settings (the migration too) can read the secret.
    for name in ("api", "migrate"):
        assert services[name]["environment"] is env, name
        assert services[name]["secrets"] == ["session_secret"], name


def test_the_operators_secrets_are_not_committed_by_accident():
    ignored_by_git = (ROOT / ".gitignore").read_text().splitlines()
    assert "docker/session-secret" in ignored_by_git and "docker/.env" in ignored_by_git
