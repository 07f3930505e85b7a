"""Bad settings stop the CLI and the server with one line per variable: its name, the value,
what is wrong and what would do; never a traceback (issue 22). Every size setting reads the
same `10GB` / `500MiB` forms."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.live import ROOT

CASES = {
    "ATRIUM_NAMESPACE_QUOTA=lots": "'lots' is not a size; use bytes or a unit",
    "ATRIUM_LOGIN_WINDOW=abc": "valid integer",
    "ATRIUM_INFERENCE_DEVICE=tpu": "use auto, cpu, cuda or cuda:N",
    "ATRIUM_INFERENCE_DTYPE=fp8": "'auto', 'float32', 'float16' or 'bfloat16'",
    "ATRIUM_MAX_REQUEST_BODY=huge": "is not a size",
}


def atrium(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ATRIUM_")}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env={**clean, "ATRIUM_DATA_DIR": str(tmp_path / "hub"), **env},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("setting", list(CASES))
def test_a_bad_setting_is_one_line_naming_it(tmp_path: Path, setting: str) -> None:
    variable, _, value = setting.partition("=")
    for command in (["config"], ["serve", "--port", "0"]):
        done = atrium(tmp_path, *command, **{variable: value})
        assert done.returncode == 2, done.stderr
        (line,) = done.stderr.strip().splitlines()
        assert line.startswith(f"atrium: configuration error: {setting}: "), line
        assert CASES[setting] in line


def test_every_size_setting_takes_units(tmp_path: Path) -> None:
    done = atrium(
        tmp_path,
        "config",
        ATRIUM_NAMESPACE_QUOTA="10GB",
        ATRIUM_INFERENCE_MEMORY_BUDGET="8GiB",
        ATRIUM_MAX_REQUEST_BODY="500MB",
        ATRIUM_LFS_PART_SIZE="64MiB",
    )
    assert done.returncode == 0, done.stderr
    shown = dict([*line.split(None, 1), ""][:2] for line in done.stdout.splitlines())
    assert shown["ATRIUM_NAMESPACE_QUOTA"] == "10000000000"
    assert shown["ATRIUM_INFERENCE_MEMORY_BUDGET"] == str(8 * 1024**3)
    assert shown["ATRIUM_MAX_REQUEST_BODY"] == "500000000"
    assert shown["ATRIUM_LFS_PART_SIZE"] == str(64 * 1024**2)


@pytest.mark.parametrize(
    ("env", "reason"),
    [
        ({"ATRIUM_SECRET_KEY": "change-me"}, "is a placeholder or shorter than 32 characters"),
        (
            {"ATRIUM_SECRET_KEY": "change-me-to-a-long-random-string-please"},
            "is a placeholder",
        ),
        (
            {"ATRIUM_DATABASE_URL": "postgresql+psycopg://postgres@127.0.0.1:5432/none"},
            "ATRIUM_SECRET_KEY is required with a PostgreSQL database",
        ),
    ],
    ids=["short", "example-file", "shared-database"],
)
def test_a_server_refuses_a_placeholder_or_missing_shared_secret(
    tmp_path: Path, env: dict[str, str], reason: str
) -> None:
    """Replicas sign sessions with one key: the compose and Kubernetes examples' placeholders,
    or no key at all on a shared database, stop `serve` before it opens anything."""
    done = atrium(tmp_path, "serve", "--port", "0", **env)
    assert done.returncode == 2, done.stderr
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("atrium: configuration error: ") and reason in line
    assert "secrets.token_urlsafe" in line  # how to make one


def test_commands_refuse_to_start_a_second_hub_by_accident(tmp_path: Path) -> None:
    """Run from the wrong folder, `atrium users create` used to make a new, empty hub there
    whose token the running server refused: now it says which hub is missing and how to
    choose; `--init` (or naming the folder) creates one on purpose."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ATRIUM_")}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *args],
            env={**clean, "PYTHONPATH": str(ROOT)},
            cwd=elsewhere,
            capture_output=True,
            text=True,
            timeout=120,
        )

    refused = run("users", "create", "bob")
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert f"no hub in {elsewhere / 'storage'}" in line and "--init" in line
    assert "ATRIUM_DATA_DIR" in line
    shown = run("config")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith(f"# hub: embedded, {elsewhere / 'storage' / 'atrium.db'}")
    assert "not created yet" in shown.stdout
    assert not (elsewhere / "storage").exists()  # neither command wrote anything

    made = run("--init", "users", "create", "bob")
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip().splitlines()[-1].startswith("atr_")
    again = run("users", "list")
    assert again.returncode == 0 and "bob" in again.stdout
    assert "not created yet" not in run("config").stdout
