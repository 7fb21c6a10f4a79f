"""export-hf / import-hf destinations (issue 10 item 2): --force replaces a non-empty directory whole, and the
output is written into a temporary directory renamed into place, so a failure leaves the old one as it was.
The refusals (source, inside the source, non-empty without --force) are rows of tests/test_bad_inputs.py."""

from __future__ import annotations

import json

import pytest

from gptkit.errors import GptkitError
from gptkit.files import check_destination, directory_written_atomically
from tests.cli_workspace import changed_paths, snapshot


def test_force_replaces_a_non_empty_destination_whole(cli_workspace, gptkit_cli):
    stale = cli_workspace / "ckpt2" / "stale.txt"
    stale.write_text("from before", encoding="utf-8")
    r = gptkit_cli.run(["export-hf", "ckpt", "ckpt2", "--force"], cli_workspace)
    assert r.returncode == 0, r.stderr
    assert json.loads((cli_workspace / "ckpt2" / "config.json").read_text())["model_type"] == "gpt2"
    assert not stale.exists()
    assert not [p.name for p in cli_workspace.iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_failed_write_leaves_the_destination_as_it_was(cli_workspace):
    dest = cli_workspace / "ckpt2"
    before = snapshot(cli_workspace)
    with pytest.raises(RuntimeError, match="disk full"), directory_written_atomically(dest) as tmp:
        (tmp / "config.json").write_text("{}", encoding="utf-8")
        raise RuntimeError("disk full")
    assert not changed_paths(before, snapshot(cli_workspace))


def test_a_destination_that_holds_the_source_is_refused_even_with_force(cli_workspace):
    with pytest.raises(GptkitError, match="holds the source directory"):
        check_destination(cli_workspace, (cli_workspace / "ckpt",), force=True)
    with pytest.raises(GptkitError, match="is the source directory itself"):
        check_destination(cli_workspace / "ckpt" / ".." / "ckpt", (cli_workspace / "ckpt",), force=True)
