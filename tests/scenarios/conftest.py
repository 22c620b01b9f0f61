"""One small saved run shared by the tests of the teaching outputs (page, votes, diff)."""

import pytest

from teaching_support import save_small_run


@pytest.fixture(scope="session")
def saved(tmp_path_factory):
    """A folder with the small faulty run saved by `l2sim run` (--events, --html, --data-dir)."""
    return save_small_run(tmp_path_factory.mktemp("saved"))
