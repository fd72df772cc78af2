"""The CUDA sources compile (there may be no GPU here: this only proves they build)."""

import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
from torch.utils import cpp_extension

from ops_cuda import _native

CSRC = Path(_native.__file__).resolve().parent / "csrc"


def _includes() -> list[str]:
    paths = [*cpp_extension.include_paths(), sysconfig.get_paths()["include"], str(CSRC)]
    return [f"-I{p}" for p in paths]


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH (install the CUDA toolkit)")
@pytest.mark.parametrize("source", sorted(p.name for p in CSRC.glob("*.cu")))
def test_cu_sources_compile_with_nvcc(source, tmp_path):
    out = tmp_path / "k.o"
    cmd = ["nvcc", "-c", "-std=c++17", "-arch=sm_75", *_includes(), str(CSRC / source), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert out.stat().st_size > 0


@pytest.mark.skipif(shutil.which("c++") is None, reason="no C++ compiler on PATH")
def test_cuda_binding_source_compiles():
    cmd = ["c++", "-fsyntax-only", "-std=c++17", "-DTORCH_EXTENSION_NAME=ops_cuda_check", *_includes()]
    proc = subprocess.run([*cmd, str(CSRC / "cuda_bind.cpp")], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]


def test_cuda_sources_are_listed_for_the_build():
    sources, headers, _ = _native.KINDS["cuda"]
    assert {p.name for p in CSRC.glob("*.cu")} <= set(sources)
    assert all((CSRC / name).exists() for name in (*sources, *headers))
