import platform
import warnings
from pathlib import Path

import torch

from cl_nas.condense import DMCondenser
from cl_nas.utils import machine_description, native_bf16, resolve_bf16


def test_bf16_defaults_to_what_the_cpu_does_natively():
    native = native_bf16("cpu")
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file() and platform.machine() == "x86_64":  # the kernel's own view of the ISA agrees
        flags = set(next(line for line in cpuinfo.read_text().splitlines() if line.startswith("flags")).split())
        assert native == bool(flags & {"avx512_bf16", "amx_bf16"})
    assert resolve_bf16(None, "cpu") is native
    assert resolve_bf16(False, "cpu") is False
    condenser = DMCondenser(iterations=1, device="cpu")
    assert condenser.bf16 is native and condenser.get_config()["bf16"] is native  # the key records the resolved value


def test_explicit_bf16_is_honoured_and_warns_only_where_it_is_emulated():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert resolve_bf16(True, "cpu") is True
    emulated = [w for w in caught if "no native bf16" in str(w.message)]
    assert len(emulated) == (0 if native_bf16("cpu") else 1)
    if emulated:
        assert "10x slower than float32" in str(emulated[0].message)


def test_machine_description_names_the_vector_isa():
    text = machine_description()
    if not torch.cuda.is_available():
        assert text.endswith(torch.backends.cpu.get_cpu_capability() + ("+BF16" if native_bf16("cpu") else ""))
        assert f"{torch.get_num_threads()} threads" in text
