"""The policy engine sits on the Lambda cold path: it must stay pure and light to import."""

import subprocess
import sys

HEAVY = ("boto3", "botocore", "difflib", "hypothesis")


def test_import_is_pure_and_light() -> None:
    code = f"import sys, gatekeeper.policy; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": "layers/core"},
    )
    assert result.stdout.strip() == ""
