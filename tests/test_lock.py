"""The lock: requirements/dev.txt (what `make install` installs) and requirements/run.txt (what
the image installs) hold every package pyproject.toml asks for, at one version each, with its
hashes, and this environment is the lock. A dependency added to pyproject.toml without `make
lock` fails here, by name, rather than as an ImportError on a fresh machine."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.live import ROOT

LOCKS = {"dev": ROOT / "requirements" / "dev.txt", "run": ROOT / "requirements" / "run.txt"}
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;\\]+)")


def pins(lock: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, how many hashes), from a pip-compile lock."""
    found: dict[str, tuple[str, int]] = {}
    name = None
    for line in lock.read_text().splitlines():
        if match := PIN.match(line):
            name = canonicalize_name(match.group(1))
            found[name] = (match.group(2), 0)
        elif name is not None and line.strip().startswith("--hash=sha256:"):
            version, hashes = found[name]
            found[name] = (version, hashes + 1)
        elif not line.startswith((" ", "#")) and line.strip():
            raise AssertionError(f"{lock.name}: not a pinned requirement: {line!r}")
    return found


def wanted(extras: tuple[str, ...]) -> list[Requirement]:
    """pyproject.toml's requirements that apply here, with `extras` and the build system's."""
    project = PROJECT["project"]
    texts = [*project["dependencies"], *PROJECT["build-system"]["requires"]]
    texts += [text for extra in extras for text in project["optional-dependencies"][extra]]
    requirements = [Requirement(text) for text in texts]
    environment = default_environment()
    return [r for r in requirements if r.marker is None or r.marker.evaluate(environment)]


@pytest.mark.parametrize(
    ("lock", "extras"), [("dev", ("otel", "test")), ("run", ())], ids=["dev", "run"]
)
def test_the_lock_satisfies_pyproject(lock, extras):
    locked = pins(LOCKS[lock])
    for requirement in wanted(extras):
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{requirement} is not in requirements/{lock}.txt: run make lock"
        version = locked[name][0]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"requirements/{lock}.txt locks {name}=={version}, pyproject.toml asks for "
            f"{requirement}: run make lock"
        )


@pytest.mark.parametrize("lock", sorted(LOCKS))
def test_every_locked_package_is_pinned_with_its_hashes(lock):
    locked = pins(LOCKS[lock])
    assert len(locked) > 20
    assert [name for name, (_, hashes) in locked.items() if hashes == 0] == []
    assert "pip" in locked or lock == "run"  # make install's own pip is locked too
    assert "setuptools" in locked  # what builds the project, with nothing fetched besides


def test_the_image_runs_the_versions_the_tests_ran():
    dev, run = pins(LOCKS["dev"]), pins(LOCKS["run"])
    assert set(run) <= set(dev)
    assert {n: v for n, (v, _) in run.items() if dev[n][0] != v} == {}
    assert not {"pytest", "ruff", "mypy", "hypothesis", "pip-tools"} & set(run)


def test_this_environment_is_the_lock():
    """make install installed requirements/dev.txt (the stamp follows the lock)."""
    differing = {}
    for name, (version, _) in pins(LOCKS["dev"]).items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            installed = None
        if installed is None or Version(installed) != Version(version):
            differing[name] = (version, installed)
    assert differing == {}, "locked vs installed; run make install"


def test_make_install_installs_the_lock_and_follows_it():
    makefile = (ROOT / "Makefile").read_text()
    recipe = makefile.split("$(VENV)/.installed:", 1)[1].split("\n\n", 1)[0]
    assert recipe.splitlines()[0].split() == ["pyproject.toml", "$(LOCK)"]
    assert "LOCK := requirements/dev.txt" in makefile
    assert "--require-hashes -r $(LOCK)" in recipe
    assert "--no-deps --no-build-isolation -e ." in recipe  # nothing fetched beside the lock
    ci = (ROOT / ".ci" / "run").read_text()
    assert "make test" in ci and "test: lint" in makefile and "lint: install" in makefile


def test_the_libraries_whose_internals_we_use_are_capped():
    """tests/test_library_internals.py checks those internals at the locked versions; a new
    minor release is taken by raising the cap, after it passes."""
    caps = {
        canonicalize_name(r.name): r.specifier
        for r in map(Requirement, PROJECT["project"]["dependencies"])
    }
    for name in ("strawberry-graphql", "graphql-core"):
        assert any(spec.operator == "<" for spec in caps[name]), f"{name} has no upper bound"
