"""pytest fixtures and the suite's settings; the helpers themselves live in tests/helpers.py.

Hypothesis profiles: "ci" (chosen when CI=true) is derandomized, so a push is tested with the
same examples every time, and keeps no database; "explicit" runs only the @example cases
(the bugs already found); "fuzz" draws new ones even under CI=true. HYPOTHESIS_PROFILE picks
one by name.
"""

import os

import pytest
from click.testing import CliRunner
from hypothesis import Phase, settings

pytest_plugins = ["tests.loud_skips"]  # under CI=true a skipped proof fails

settings.register_profile("ci", derandomize=True, database=None, print_blob=True)
settings.register_profile("explicit", phases=[Phase.explicit], database=None)
settings.register_profile("fuzz", derandomize=False)  # `make fuzz`: new examples each run
_profile = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") == "true" else "")
if _profile:
    settings.load_profile(_profile)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()
