"""Test-session set-up shared by ``tests/`` and the nbval run over ``notebooks/``.

Keras reads ``KERAS_HOME`` once, at import, and kernels started by nbval and the
browser test inherit the environment, so it is settled here, before anything
imports Keras.  When ``KERAS_HOME`` is unset and the offline weights exist in
``../shared/keras-cache/models`` (as in CI), they are copied into a temporary
Keras cache; otherwise Keras downloads them as it does for users.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

OFFLINE_WEIGHTS = Path(__file__).resolve().parent.parent / "shared" / "keras-cache" / "models"


def pytest_configure(config: pytest.Config) -> None:
    if "KERAS_HOME" in os.environ or not OFFLINE_WEIGHTS.is_dir():
        return
    keras_home = Path(tempfile.mkdtemp(prefix="keras-home-"))
    shutil.copytree(OFFLINE_WEIGHTS, keras_home / "models")
    for copied in (keras_home / "models").iterdir():
        copied.chmod(0o644)  # ../shared is read-only; the copies must not be
    os.environ["KERAS_HOME"] = str(keras_home)
