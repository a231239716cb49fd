"""What a model version was built from: code commit, lock file, and the tags that record it.

No dagster here: the training asset gathers the Dagster side (data and code versions) and
passes it to :func:`provenance_tags`; the reproduce job reads the tags back.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from collections.abc import Mapping
from functools import cache
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOCK_FILE = PROJECT_ROOT / "uv.lock"

# Tags on the training run and on the registered model version.
DATA_VERSIONS_TAG = "training_data_versions"
CODE_VERSIONS_TAG = "code_versions"
GIT_COMMIT_TAG = "git_commit"
LOCK_HASH_TAG = "uv_lock_sha256"
TRAINING_CONFIG_TAG = "training_config"
EVALUATION_CONFIG_TAG = "evaluation_config"
PROVENANCE_TAGS = (
    DATA_VERSIONS_TAG,
    CODE_VERSIONS_TAG,
    GIT_COMMIT_TAG,
    LOCK_HASH_TAG,
    TRAINING_CONFIG_TAG,
)


def _git(*args: str) -> str:
    done = subprocess.run(
        ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5, check=True
    )
    return done.stdout.strip()


@cache
def git_commit() -> str:
    """The commit of the checkout this package runs from (``+dirty`` with local changes).

    ``unknown`` outside a git checkout (an installed wheel).
    """
    try:
        head = _git("rev-parse", "HEAD")
        changes = _git("status", "--porcelain", "--untracked-files=no", "--", "mlops_assets")
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not head:
        return "unknown"
    return f"{head}+dirty" if changes else head


@cache
def lock_file_sha256() -> str:
    """SHA-256 of ``uv.lock`` beside the package, or ``unknown`` when it is not there."""
    if not LOCK_FILE.is_file():
        return "unknown"
    return hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()


def provenance_tags(
    data_versions: Mapping[str, str],
    code_versions: Mapping[str, str],
    training_config: Mapping[str, object],
) -> dict[str, str]:
    """The tags that let a version be rebuilt: inputs, code, commit, lock file, config.

    Args:
        data_versions: Data version of each feature partition trained or held out on.
        code_versions: Code version of each asset of the pipeline.
        training_config: The training configuration (JSON-serializable).
    """
    return {
        DATA_VERSIONS_TAG: json.dumps(dict(sorted(data_versions.items()))),
        CODE_VERSIONS_TAG: json.dumps(dict(sorted(code_versions.items()))),
        GIT_COMMIT_TAG: git_commit(),
        LOCK_HASH_TAG: lock_file_sha256(),
        TRAINING_CONFIG_TAG: json.dumps(dict(training_config), sort_keys=True),
    }
