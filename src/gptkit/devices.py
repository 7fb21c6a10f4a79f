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


CPU_INFO = "/proc/cpuinfo"
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_has_native_bf16(cpuinfo: str | None = None) -> bool:
    """Whether this CPU does bfloat16 matrix products in hardware (the AVX512-BF16 or AMX-BF16 flag in
    /proc/cpuinfo). Without them PyTorch emulates bfloat16 on CPUs, and a bf16 autocast step of the demo's
    model ran about 30x slower than on a CPU that has them (an AVX2-only EPYC, 2026-12-02). False where the
    file (`cpuinfo`, default CPU_INFO) cannot be read (not Linux): float32 is the safe choice there."""
    try:
        with open(cpuinfo or CPU_INFO, encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[-1].split())
                    return any(flag in flags for flag in NATIVE_BF16_FLAGS)
    except OSError:
        return False
    return False
