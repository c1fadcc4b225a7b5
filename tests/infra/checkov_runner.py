"""checkov in a virtualenv of its own.

checkov pins boto3 and packaging exactly (checkov 3.3.30: boto3==1.35.49, packaging<24), which
conflicts with requirements.txt, so it cannot live in the project's .venv. The first run makes
.venv/checkov from tests/infra/requirements-checkov.txt (the pin); later runs reuse it.
"""

from __future__ import annotations

import fcntl
import json
import subprocess
import sys
import venv
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = Path(__file__).with_name("requirements-checkov.txt")
CHECKOV_VENV = REPO_ROOT / ".venv" / "checkov"
CHECKOV = CHECKOV_VENV / "bin" / "checkov"
STAMP = CHECKOV_VENV / ".installed"
LOCK = REPO_ROOT / ".venv" / "checkov.lock"


def ensure_checkov() -> Path:
    """The pinned checkov, installed on first use (a minute, from PyPI). A lock file keeps two
    pytest-xdist workers from building it at once."""
    LOCK.parent.mkdir(parents=True, exist_ok=True)
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (STAMP.exists() and STAMP.read_text() == REQUIREMENTS.read_text()):
            _install()
    return CHECKOV


def _install() -> None:
    venv.create(CHECKOV_VENV, with_pip=True, clear=True)
    subprocess.run(
        [
            str(CHECKOV_VENV / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--quiet",
            "-r",
            str(REQUIREMENTS),
        ],
        check=True,
        stdout=sys.stderr,
        timeout=900,
    )
    STAMP.write_text(REQUIREMENTS.read_text())


def run_checkov(templates: list[Path]) -> list[dict[str, Any]]:
    """checkov's CloudFormation checks on `templates`: one report per template type run."""
    command = [str(ensure_checkov())]
    for template in templates:
        command += ["-f", str(template)]
    command += ["--framework", "cloudformation", "--compact", "-o", "json"]
    # Offline: no Bridgecrew platform, no version check, no guide download.
    env = {"BC_SKIP_MAPPING": "TRUE", "CHECKOV_RUN_SCA_PACKAGE_SCAN_V2": "false"}
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(CHECKOV_VENV), **env},
    )
    # Exit code 1 means "failed checks"; anything else without JSON is checkov itself failing.
    try:
        report = json.loads(result.stdout)
    except ValueError:
        raise AssertionError(f"checkov failed ({result.returncode}): {result.stderr}") from None
    return report if isinstance(report, list) else [report]
