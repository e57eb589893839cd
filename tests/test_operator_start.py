"""What an operator meets when starting the server: secrets read from files (compose and
Kubernetes secrets), the port from the environment, and a port already in use refused in one
line before anything is printed or touched."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from config.settings import load_settings
from tests.live import ROOT

CLI = [sys.executable, "-m", "server.cli"]


@pytest.fixture
def environment(monkeypatch, tmp_path) -> dict[str, str]:
    for name in list(os.environ):
        if name.startswith("CPL_"):
            monkeypatch.delenv(name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CPL_")}
    return env | {"CPL_DATA_DIR": str(tmp_path / "data")}


@pytest.mark.parametrize(
    ("variable", "field"),
    [("CPL_SESSION_SECRET", "session_secret"), ("CPL_OIDC_CLIENT_SECRET", "oidc_client_secret")],
)
def test_a_secret_is_read_from_the_file_its_FILE_variable_names(
    environment, monkeypatch, tmp_path, variable, field
):
    secret = tmp_path / "secret"
    secret.write_text("s3cret with spaces\n")  # `echo` and `openssl rand -hex` end in a newline
    monkeypatch.setenv(f"{variable}_FILE", str(secret))
    assert getattr(load_settings(), field) == "s3cret with spaces"
    monkeypatch.delenv(f"{variable}_FILE")
    monkeypatch.setenv(variable, "from the environment")
    assert getattr(load_settings(), field) == "from the environment"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: None, r"CPL_SESSION_SECRET_FILE: cannot read .*secret \(No such file"),
        (lambda path: path.write_text("\n"), r"CPL_SESSION_SECRET_FILE: .*secret is empty"),
        (lambda path: path.mkdir(), r"CPL_SESSION_SECRET_FILE: cannot read .*\(Is a directory\)"),
    ],
)
def test_a_secret_file_that_cannot_serve_is_refused_by_name(
    environment, monkeypatch, tmp_path, make, message
):
    make(tmp_path / "secret")
    monkeypatch.setenv("CPL_SESSION_SECRET_FILE", str(tmp_path / "secret"))
    with pytest.raises(ValueError, match=message):
        load_settings()


def test_a_secret_given_twice_is_refused(environment, monkeypatch, tmp_path):
    (tmp_path / "secret").write_text("one")
    monkeypatch.setenv("CPL_SESSION_SECRET_FILE", str(tmp_path / "secret"))
    monkeypatch.setenv("CPL_SESSION_SECRET", "two")
    with pytest.raises(ValueError, match="set CPL_SESSION_SECRET or CPL_SESSION_SECRET_FILE"):
        load_settings()


def test_a_bad_setting_stops_every_command_in_one_line(environment, tmp_path):
    env = environment | {"CPL_SESSION_SECRET_FILE": str(tmp_path / "missing")}
    result = subprocess.run(
        [*CLI, "token", "SSC"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        f"cpl-pathways: CPL_SESSION_SECRET_FILE: cannot read {tmp_path / 'missing'} "
        "(No such file or directory)"
    ]


def serve(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "serve", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )


def test_serve_on_a_port_in_use_says_so_in_one_line_before_the_banner(environment):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        by_flag = serve(environment, "--port", str(port))
        by_environment = serve(environment | {"CPL_PORT": str(port)})
    for result in (by_flag, by_environment):
        assert result.returncode == 2
        assert result.stdout == ""  # no banner, no development tokens
        assert result.stderr.splitlines() == [
            f"cpl-pathways serve: cannot listen on 127.0.0.1:{port}: already in use "
            "(choose another with --port)"
        ]
    # Refused before anything was touched: no database made, no development key written.
    assert not Path(environment["CPL_DATA_DIR"]).exists()


def test_serve_on_an_address_not_this_machines_says_so(environment):
    result = serve(environment, "--host", "192.0.2.1", "--port", "8000")  # TEST-NET-1: unbound
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("cpl-pathways serve: cannot listen on 192.0.2.1:8000: ")
    assert len(result.stderr.splitlines()) == 1


def test_a_port_that_is_not_a_number_is_a_usage_error(environment):
    result = serve(environment | {"CPL_PORT": "eighty"})
    assert result.returncode == 2 and "--port: invalid int value: 'eighty'" in result.stderr
