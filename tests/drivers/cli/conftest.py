"""What the CLI tests share: the settings exported as the CITYLAKE_* variables the CLI reads."""

from __future__ import annotations

import pytest


@pytest.fixture
def env(settings, monkeypatch):
    """The CLI reads its settings from CITYLAKE_*: point them at the test's lake and directory."""
    for key, value in settings.as_env().items():
        monkeypatch.setenv(key, value)
    return settings
