"""Fixtures of the app tests: the console-script tests' scratch folder per
test module (`workdir`)."""

from tests.tools.conftest import workdir  # pylint: disable=unused-import
