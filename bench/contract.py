"""The deep contract profile: schemathesis with every check, each role and without a key.

Runs tests/contract with FACEWARDEN_TEST_CONTRACT_PROFILE=deep (20,000+ cases) and prints the
cases and failures per role. Usage: ``python bench/contract.py`` from the repository root.
"""

from __future__ import annotations

import os
import subprocess
import sys

if __name__ == "__main__":
    env = {**os.environ, "FACEWARDEN_TEST_CONTRACT_PROFILE": "deep"}
    sys.exit(
        subprocess.call(
            [
                sys.executable,
                "-m",
                "pytest",
                "-q",
                "-s",
                "-p",
                "no:cacheprovider",
                "tests/contract/test_schemathesis.py",
            ],
            env=env,
        )
    )
