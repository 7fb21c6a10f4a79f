"""One reading of a `--device` value for every command: auto | cpu | cuda | cuda:N | mps, checked against what
PyTorch sees on this machine, so a device that is not there is one clear error instead of a traceback."""

from __future__ import annotations

from gptkit.errors import ConfigError

DEVICE_HELP = "auto (cuda if available, else cpu) | cpu | cuda | cuda:N | mps"


def resolve_device(setting: str, what: str = "--device"):
    """The torch.device for `setting`; ConfigError naming `what` for an unknown or absent device."""
    import torch

    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(setting)
    except (RuntimeError, ValueError):
        raise ConfigError(f"{what} {setting!r}: not a device gptkit runs on (expected {DEVICE_HELP})") from None
    if device.type == "cpu":
        return device
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{what} {setting!r}: CUDA is not available here (PyTorch sees no CUDA device); use cpu")
        count = torch.cuda.device_count()
        if device.index is not None and device.index >= count:
            raise ConfigError(f"{what} {setting!r}: {count} CUDA device(s) here: cuda:0 .. cuda:{count - 1}")
        return device
    if device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"{what} {setting!r}: Apple MPS is not available here; use cpu")
        return device
    raise ConfigError(f"{what} {setting!r}: not a device gptkit runs on (expected {DEVICE_HELP})")
