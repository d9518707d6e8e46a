"""Secrets stay out of the repository: local files are ignored, tracked files hold no key.

``git check-ignore --no-index`` asks the ignore rules themselves (not the index), so a path is
checked whether or not such a file exists. The scans read every file ``git ls-files`` tracks.
Each check also runs on a planted bad case, so that a check which can no longer fail is noticed.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from dotenv import dotenv_values

from devservices.environment import PROJECT_ROOT

# What must never be committed, as a developer would name it; `keys/` may sit at any depth.
MUST_BE_IGNORED = [
    ".env",
    "service-account.json",
    "service-account-prod.json",
    "secrets/service-account.json",
    "reporting.key.json",
    "keys/reporting.key.json",
    "deploy/keys/sheets.key.json",
    "deploy/tls/server.pem",
    "smtp.key",
    "sheets-service-account.p12",
    "secrets/anything.txt",
    ".local/",
    ".local/airflow/logs/dag_id=x/attempt=1.log",
    ".local/postgres/data/pg_hba.conf",
]
# Committed on purpose: the ignore rules must not swallow them.
MUST_BE_TRACKABLE = [".env.example", "include/common/postgres.py", "docker-compose.yaml"]

# A PEM private key of any kind (RSA, EC, OpenSSH, PKCS#8, encrypted) with a key in it: a base64
# body line after the header, the line break real or JSON-escaped as in a key file. A header
# around a placeholder (a test that a message never quotes a key) is no key.
PRIVATE_KEY_BLOCK = re.compile(r"-{5}BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-{5}(?:\s|\\n)+[A-Za-z0-9+/=]{40,}")
# Credentials with a recognisable shape (the issuers' documented prefixes).
SECRET_SHAPES = {
    "Google API key": re.compile(r"\bAIza[0-9A-Za-z_\-]{35}\b"),
    "AWS access key id": re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    "GitHub token": re.compile(r"\bgh[pousr]_[A-Za-z0-9]{36,}\b"),
    "Slack token": re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"),
    "Google OAuth client secret": re.compile(r"\bGOCSPX-[A-Za-z0-9_\-]{20,}\b"),
}
COMPOSE_SECRET = re.compile(r"^COMPOSE_\w*(?:PASSWORD|SECRET|KEY|TOKEN)\w*$")


def git(*args: str, input: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["git", *args], cwd=PROJECT_ROOT, input=input, capture_output=True, text=True, check=False, timeout=60
    )


if git("rev-parse", "--is-inside-work-tree").returncode != 0:
    pytest.skip("not a git checkout: nothing to check", allow_module_level=True)


def ignored(paths: list[str]) -> set[str]:
    """Which of ``paths`` the repository's ignore rules ignore (files need not exist)."""
    result = git("check-ignore", "--no-index", "--stdin", input="\n".join(paths))
    # 0: some ignored, 1: none ignored; anything else is an error, not an answer.
    assert result.returncode in (0, 1), result.stderr
    return set(result.stdout.splitlines())


def tracked_files() -> list[Path]:
    listed = git("ls-files", "-z").stdout.split("\0")
    return [PROJECT_ROOT / name for name in listed if name and (PROJECT_ROOT / name).is_file()]


def secrets_in(text: str) -> list[str]:
    found = ["a private key block"] if PRIVATE_KEY_BLOCK.search(text) else []
    return found + [name for name, shape in SECRET_SHAPES.items() if shape.search(text)]


def compose_secrets_set(path: Path) -> dict[str, str]:
    """The compose secrets that ``path`` (an .env file) gives a value: .env.example must give none."""
    values = dotenv_values(path)
    return {key: value for key, value in values.items() if COMPOSE_SECRET.match(key) and value}


# --- the checks ----------------------------------------------------------------------------------


def test_local_configuration_keys_and_state_are_ignored_by_git() -> None:
    assert sorted(set(MUST_BE_IGNORED) - ignored(MUST_BE_IGNORED)) == []


def test_files_meant_to_be_committed_are_not_ignored() -> None:
    # Also proves that check-ignore answers "no" when it should: the test above can fail.
    assert ignored(MUST_BE_TRACKABLE) == set()


def test_no_tracked_file_is_one_the_ignore_rules_exclude() -> None:
    # A file committed before its ignore rule (a .env, a key) stays tracked and published.
    result = git("ls-files", "--cached", "--ignored", "--exclude-standard")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []


def test_no_tracked_file_holds_a_private_key_or_a_credential() -> None:
    files = tracked_files()
    found = {
        str(path.relative_to(PROJECT_ROOT)): secrets
        for path in files
        if (secrets := secrets_in(path.read_bytes().decode("utf-8", errors="replace")))
    }
    assert found == {}
    assert len(files) > 50, "git ls-files listed too few files: the scan proves nothing"


def test_the_example_settings_leave_every_compose_secret_empty() -> None:
    example = PROJECT_ROOT / ".env.example"
    keys = [key for key in dotenv_values(example) if COMPOSE_SECRET.match(key)]
    # The compose secrets the file documents (fernet key, JWT secret, passwords, client key...).
    assert len(keys) >= 6, keys
    assert compose_secrets_set(example) == {}


# --- the checks can fail -------------------------------------------------------------------------


def test_the_scans_find_planted_secrets(tmp_path: Path) -> None:
    from tests.fakes.google_sheets import service_account_info

    key_file = str(service_account_info())
    assert secrets_in(key_file) == ["a private key block"]
    assert secrets_in("token = 'ghp_" + "a1B2" * 9 + "'") == ["GitHub token"]
    assert secrets_in("PRIVATE_KEY_BLOCK = re.compile(...)  # prose about keys") == []

    planted = tmp_path / ".env.example"
    planted.write_text("COMPOSE_FERNET_KEY=\nCOMPOSE_WAREHOUSE_PASSWORD=hunter2\nCOMPOSE_AIRFLOW_PORT=8080\n")
    assert compose_secrets_set(planted) == {"COMPOSE_WAREHOUSE_PASSWORD": "hunter2"}
