"""Shared fixtures. Tests are hermetic: nothing is downloaded; data comes from ../shared or packages."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("GPTKIT_SHARED", REPO_ROOT.parent / "shared"))

# Two cores on CI: keep torch from oversubscribing when pytest-xdist runs two workers.
torch.set_num_threads(max(1, (os.cpu_count() or 2) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))


@pytest.fixture
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not found (the shared data folder beside the repository)")
    return SHARED


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="module")
def one_thread():
    """torch on one intra-op thread for a module (`pytestmark = pytest.mark.usefixtures("one_thread")`):
    hundreds of batch-1 steps of a tiny model run faster on one thread, and on a machine whose cores other
    jobs hold, two spinning OpenMP threads made each step 30x slower (measured)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


# ---- the CLI as separate processes, and a workspace of files to run it on (tests/cli_*.py) -----------------
@pytest.fixture(scope="session")
def gptkit_cli(tmp_path_factory: pytest.TempPathFactory):
    """`gptkit_cli.run(argv, cwd)` -> (returncode, stdout, stderr) of `python -m gptkit *argv`."""
    from tests.cli_process import CliProcesses

    runner = CliProcesses(tmp_path_factory.mktemp("cli_output"))
    yield runner
    runner.close()


@pytest.fixture(scope="session")
def cli_workspace_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.cli_workspace import build_workspace

    root = tmp_path_factory.mktemp("cli_workspace") / "template"
    build_workspace(root)
    return root


@pytest.fixture
def cli_workspace(cli_workspace_template: Path, tmp_path: Path) -> Path:
    """A fresh copy of tests/cli_workspace.py's files for this test."""
    import shutil

    root = tmp_path / "ws"
    shutil.copytree(cli_workspace_template, root, symlinks=True)
    return root
