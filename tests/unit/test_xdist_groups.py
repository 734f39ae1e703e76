"""The xdist_group marks hold under `--dist loadgroup` (tests/xdist_groups.py): a grouped module's
tests all run on one worker, so its module fixture is set up once."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

GROUPED = textwrap.dedent(
    """
    import os

    import pytest

    pytestmark = pytest.mark.xdist_group("one")


    @pytest.fixture(scope="module")
    def setup_log():
        with open(os.environ["SETUPS"], "a") as log:
            log.write(os.environ["PYTEST_XDIST_WORKER"] + "\\n")


    @pytest.mark.parametrize("n", range(8))
    def test_grouped(setup_log, n):
        pass
    """
)


@pytest.mark.parametrize(("hook", "setups"), [(True, 1), (False, 2)], ids=["with-the-hook", "without"])
def test_a_grouped_module_runs_on_one_worker(tmp_path: Path, hook: bool, setups: int):
    (tmp_path / "test_grouped.py").write_text(GROUPED)
    conftest = "from tests.xdist_groups import pytest_collection_modifyitems  # noqa: F401\n"
    (tmp_path / "conftest.py").write_text(conftest if hook else "")
    log = tmp_path / "setups.log"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "SETUPS": str(log)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    # Without the hook pytest 9 ignores the group: both workers take tests, and each sets the
    # module up. The control shows this test can tell the two apart; should it start failing,
    # xdist reads pytest's id again and the hook can go.
    assert len(log.read_text().split()) == setups
