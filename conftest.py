"""Test-session set-up shared by ``tests/`` and the nbval run over ``notebooks/``.

Keras reads ``KERAS_HOME`` once, at import, and kernels started by nbval and the
browser tests inherit the environment, so it is settled here, before anything
imports Keras: an existing ``KERAS_HOME`` is kept; otherwise the offline weights
beside the repository (as in CI) are copied into a temporary Keras cache; without
them, Keras downloads the weights as it does for users.
"""

from __future__ import annotations

from contextlib import ExitStack

import pytest

from classifier.testing import offline_keras_home

_SESSION = ExitStack()


def pytest_configure(config: pytest.Config) -> None:
    try:
        _SESSION.enter_context(offline_keras_home())
    except FileNotFoundError:
        pass  # no offline weights: Keras downloads them


def pytest_unconfigure(config: pytest.Config) -> None:
    _SESSION.close()
