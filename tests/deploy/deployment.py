"""A ``deploy/run`` deployment started for real into a temporary directory, and stopped after.

Shared by tests/deploy/test_deployment.py and bench/load.py: nginx (TLS) in front of
``serve --http --workers N``, PostgreSQL, a Milvus standalone server, Redis and, when this
FaceWarden has it, the S3 photo store, with the test model pack.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.api.served import free_port
from tests.conftest import REPO, ensure_starter_pack, models_dir_for_tests

__all__ = ["MISSING", "RUN", "Deployment", "deployed", "read_env"]

RUN = REPO / "deploy" / "run"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
MILVUS = os.environ.get("FACEWARDEN_TEST_MILVUS_SERVER") or shutil.which("milvus-server") or ""
INITDB = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))

# What the deployment needs and this machine lacks, as "program (how to install it)".
MISSING = [
    name
    for name, present in (
        ("nginx (apt nginx)", Path(NGINX).exists()),
        ("redis-server (apt redis-server)", shutil.which("redis-server") is not None),
        ("milvus-server (pip milvus; FACEWARDEN_TEST_MILVUS_SERVER)", bool(MILVUS)),
        ("PostgreSQL's initdb (apt postgresql)", bool(INITDB)),
        ("curl", shutil.which("curl") is not None),
    )
    if not present
]


@dataclass(frozen=True)
class Deployment:
    directory: Path
    url: str
    settings: dict[str, str]  # DIR/env: what serve and the CLI run with
    owner_url: str  # DIR/owner.env: the role that owns the tables
    process_env: dict[str, str]  # the environment deploy/run and the CLI run in
    started: subprocess.CompletedProcess[str]  # what `deploy/run start` said

    @property
    def cert(self) -> str:
        return str(self.directory / "data" / "tls" / "cert.pem")

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def run(self, command: str, *args: str) -> subprocess.CompletedProcess[str]:
        """``deploy/run COMMAND --dir DIR ARGS``."""
        return subprocess.run(
            [str(RUN), command, "--dir", str(self.directory), *args],
            env=self.process_env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )


def read_env(path: Path) -> dict[str, str]:
    """The NAME=value lines of ``path``, or nothing when it does not exist."""
    if not path.exists():
        return {}
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    return {name: value for name, value in pairs}


@contextmanager
def deployed(workers: int = 2) -> Iterator[Deployment]:
    """``deploy/run start`` into a new directory; ``stop`` and removal on the way out.

    The caller checks ``started.returncode``: a failed start is yielded too, so that its
    output can be reported, and whatever had started is stopped all the same.
    Raises AssertionError when ``deploy/run stop`` fails after a clean run.
    """
    models = models_dir_for_tests()
    ensure_starter_pack(models)
    # Not under pytest's own temporary directory: as root, PostgreSQL runs as its own account,
    # which must be able to enter every parent of the deployment directory.
    directory = Path(tempfile.mkdtemp(prefix="facewarden-deploy-"))
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("FACEWARDEN_")}
    env |= {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONPATH": str(REPO),
        "PYTHON": sys.executable,
        "MILVUS_SERVER": MILVUS,
    }
    command = [str(RUN), "start", "--dir", str(directory), "--port", str(port)]
    command += ["--workers", str(workers), "--models", str(models)]
    started = subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    made = Deployment(
        directory=directory,
        url=f"https://127.0.0.1:{port}",
        settings=read_env(directory / "env"),
        owner_url=read_env(directory / "owner.env").get("FACEWARDEN_DATABASE_URL", ""),
        process_env=env,
        started=started,
    )
    try:
        yield made
    except BaseException:
        made.run("stop")  # whatever had started
        raise
    else:
        stopped = made.run("stop")
        assert stopped.returncode == 0, f"deploy/run stop:\n{stopped.stdout}\n{stopped.stderr}"
        assert not any(pid.exists() for pid in (directory / "run").glob("*.pid"))
    finally:
        shutil.rmtree(directory, ignore_errors=True)
