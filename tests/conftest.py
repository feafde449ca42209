"""pytest fixtures; the helpers themselves live in tests/helpers.py."""

import pytest
from click.testing import CliRunner


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
