"""Facts about the machine a run uses that change how fast it can train (recorded with every run)."""

from __future__ import annotations

from pathlib import Path

# Instruction sets with native bfloat16 arithmetic: x86 (AVX-512 BF16, AMX) and Arm (the `bf16` feature)
BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


def cpu_bf16_native(cpuinfo: str | None = None) -> bool | None:
    """Whether the CPU computes bfloat16 natively (AVX-512 BF16 or AMX on x86, BF16 on Arm), from /proc/cpuinfo's
    flags (or the given text); None where that cannot be read (not Linux, or no flags line)."""
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text()
        except OSError:
            return None
    flags = {word for line in cpuinfo.splitlines() if line.startswith(("flags", "Features"))
             for word in line.split(":", 1)[-1].split()}
    if not flags:
        return None
    return any(flag in flags for flag in BF16_FLAGS)
