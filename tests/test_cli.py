from __future__ import annotations

import subprocess
import sys

from gptkit.cli import main


def test_model_info_prints_gpt2_parameter_count(capsys):
    assert main(["model", "info", "gpt2", "gpt3-175b"]) == 0
    out = capsys.readouterr().out
    assert "124,439,808" in out
    assert "174,604,259,328" in out  # about 175B, as the GPT-3 paper's largest model


def test_console_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "gptkit", "model", "info", "tiny"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "tiny" in result.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "gptkit", "model", "info", "gpt5"], capture_output=True, text=True, check=False
    )
    assert bad.returncode == 2 and "unknown preset 'gpt5'" in bad.stderr


def test_package_exports_load_lazily_and_cli_starts_without_torch():
    import gptkit

    assert set(gptkit.__all__) == set(gptkit._LAZY) | {"CheckpointError", "ConfigError", "GptkitError", "InteropError"}
    for name in gptkit.__all__:
        assert getattr(gptkit, name) is not None
    code = "import sys, gptkit.cli; gptkit.cli.build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
