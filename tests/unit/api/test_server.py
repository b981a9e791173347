"""api/server.py's parts that need no running server."""

from __future__ import annotations

import subprocess
import sys


def test_serve_raises_its_open_file_limit_to_the_hard_limit() -> None:
    # In a process of its own, started with the common soft limit lowered further.
    code = (
        "import resource\n"
        "from api.server import raise_open_file_limit\n"
        "_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
        "raised = raise_open_file_limit()\n"
        "print(raised, *resource.getrlimit(resource.RLIMIT_NOFILE))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    raised, soft, hard = (int(n) for n in done.stdout.split())
    assert raised == soft == min(hard, 1 << 20)
    assert soft > 256
