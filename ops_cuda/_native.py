"""Builds and loads the C++ ('cpu') and CUDA ('cuda') kernels of ops_cuda.

The extensions are compiled with ninja through `torch.utils.cpp_extension.load` the first time
they are needed (20-60 s) and cached on disk. The extension name contains a hash of its sources
(and of the compiler flags), so editing a kernel rebuilds it and an unchanged one loads in well
under a second. Build directory: $TORCH_EXTENSIONS_DIR/<name>, or, when that variable is unset,
<project>/.cache/torch_extensions/<name> (falling back to ~/.cache/torch_extensions when the
project folder is read-only, e.g. an installed package).

A standalone (PyInstaller) bundle cannot compile anything: `make dist` builds the 'cpu' extension,
copies it with a manifest into the bundle (`stage_prebuilt`), and the frozen app imports that file
(`load_extension` never calls the compiler when `sys.frozen` is set). Without a usable prebuilt
file the ops fall back to the reference implementation with one warning that says why.

A build killed half-way never blocks later ones: builders hold an flock on the folder (see
`build_lock`), so a lock file left by a dead process is recognised and removed, never waited on.
`python -m ops_cuda.build` builds the kernels up front with a progress line (`make run` / `make
test` do it in their set-up step); the explorer builds them in the background if still needed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.machinery
import importlib.util
import json
import os
import shutil
import sys
import sysconfig
import warnings
from pathlib import Path
from types import ModuleType

import torch

try:
    import fcntl
except ImportError:  # Windows
    fcntl = None

CSRC = Path(__file__).resolve().parent / "csrc"

# Portable flags: no -march=native, the build may be shared between machines (the kernels carry
# their own AVX2 copies, picked at run time). -fno-trapping-math lets GCC if-convert the
# activation's selects (we never read FP exception flags); it does not change any result.
CUDA_CFLAGS = ("/O2",) if os.name == "nt" else ("-O3", "-fno-trapping-math")
# at::parallel_for spreads a kernel over torch's threads only in code compiled with OpenMP (torch's
# CPU builds use its OpenMP backend, ATen/ParallelOpenMP.h); without it every kernel ran on one
# thread whatever torch.set_num_threads said. The extension then needs libgomp.so.1, which the
# loader resolves by that name to the copy torch already loaded: one runtime, one thread count.
# Linux only: elsewhere the compilers' OpenMP support varies, and the kernels stay single-threaded.
OPENMP_FLAGS = ("-fopenmp",) if sys.platform.startswith("linux") else ()
CPU_CFLAGS = CUDA_CFLAGS + OPENMP_FLAGS
CUDA_NVCC_FLAGS = ("-O3",)  # torch adds its own -std; no fast-math, to stay close to the reference

KINDS = {
    # kind -> (sources compiled, headers they include (hashed too), flags)
    "cpu": (("ops_cpu.cpp",), ("ops_common.h",), CPU_CFLAGS),
    "cuda": (
        ("cuda_bind.cpp", "ops_cuda.cu"),
        ("ops_common.h", "ops_cuda_kernels.h"),
        CUDA_CFLAGS + CUDA_NVCC_FLAGS,
    ),
}


class NativeBuildError(RuntimeError):
    """The C++/CUDA extension cannot be built here; the message says why and how to fix it."""


def source_files(kind: str) -> list[Path]:
    sources, headers, _ = KINDS[kind]
    return [CSRC / name for name in (*sources, *headers)]


def extension_name(kind: str) -> str:
    """ops_cuda_<kind>_<hash of sources, flags and torch version>."""
    digest = hashlib.sha256()
    for path in source_files(kind):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(repr(KINDS[kind][2]).encode())
    digest.update(torch.__version__.encode())
    return f"ops_cuda_{kind}_{digest.hexdigest()[:12]}"


def extensions_root() -> Path:
    env = os.environ.get("TORCH_EXTENSIONS_DIR")
    if env:
        return Path(env)
    project = CSRC.parent.parent
    if os.access(project, os.W_OK):
        return project / ".cache" / "torch_extensions"
    return Path.home() / ".cache" / "torch_extensions"


def build_dir(kind: str) -> Path:
    return extensions_root() / extension_name(kind)


def is_built(kind: str) -> bool:
    """True when the extension for the current sources is compiled and cached (loading is fast)."""
    name = extension_name(kind)
    folder = extensions_root() / name
    return any(folder.glob(f"{name}*.so")) or any(folder.glob(f"{name}*.pyd"))


def _pip_ninja_dir() -> str | None:
    """Folder of the pip `ninja` package's binary (a dependency of the project), if installed."""
    try:
        import ninja
    except ImportError:
        return None
    folder = getattr(ninja, "BIN_DIR", None)
    return folder if folder and os.path.isfile(os.path.join(folder, "ninja")) else None


@contextlib.contextmanager
def _same_ninja_everywhere():
    """Put the pip ninja first on PATH while building. Without it the ninja used depends on each
    process's PATH, and ninja 1.11 (e.g. Debian's) and 1.12+ hash command lines differently: a build
    folder used by both is rebuilt from scratch (30-60 s) every time the other one touched it."""
    folder = _pip_ninja_dir()
    before = os.environ.get("PATH", "")
    if folder is None or before.split(os.pathsep)[0] == folder:
        yield
        return
    os.environ["PATH"] = folder + os.pathsep + before
    try:
        yield
    finally:
        os.environ["PATH"] = before


def missing_tools(kind: str) -> str:
    """Why a build cannot even start ('' if the tools are there)."""
    from torch.utils import cpp_extension

    cxx = os.environ.get("CXX", "c++")
    if shutil.which(cxx) is None and shutil.which("g++") is None:
        return f"no C++ compiler found ({cxx!r} is not on PATH); install g++ or clang, or set CXX"
    with _same_ninja_everywhere():
        ninja_found = cpp_extension.is_ninja_available()
    if not ninja_found:
        return "ninja is not installed; `pip install ninja`"
    include = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if not include.exists():
        return f"Python headers are missing ({include}); install the python3-dev package"
    if kind == "cuda":
        if not torch.cuda.is_available():
            return "torch.cuda.is_available() is False"
        if cpp_extension.CUDA_HOME is None:
            return "the CUDA toolkit (nvcc) was not found; install it or set CUDA_HOME"
    return ""


# Folder of a standalone bundle (inside sys._MEIPASS) that holds the prebuilt extensions.
PREBUILT_DIR = "ops_cuda_prebuilt"
PREBUILT_MANIFEST = "manifest.json"  # {"torch": version, "kinds": {kind: {"file": name} or {"error": why}}}


def is_frozen() -> bool:
    """True inside a standalone (PyInstaller) bundle, where no compiler or sources are available."""
    return bool(getattr(sys, "frozen", False))


def prebuilt_root() -> Path:
    """Where a frozen app looks for prebuilt extensions (the bundle's data folder)."""
    base = getattr(sys, "_MEIPASS", None) or os.path.dirname(sys.executable)
    return Path(base) / PREBUILT_DIR


def prebuilt_library(kind: str, root: Path | None = None) -> tuple[Path | None, str]:
    """(path of the bundled extension, '') or (None, why it cannot be used)."""
    root = prebuilt_root() if root is None else root
    manifest_path = root / PREBUILT_MANIFEST
    how = "the ops run on the slower reference implementation"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, f"this standalone build has no prebuilt kernels ({manifest_path} is missing); {how}"
    except (OSError, ValueError) as exc:
        return None, f"the prebuilt kernels' manifest {manifest_path} is unreadable ({exc}); {how}"
    entry = manifest.get("kinds", {}).get(kind) or {}
    if not entry.get("file"):
        why = entry.get("error") or "it was not built when the bundle was made"
        return None, (
            f"this standalone build has no prebuilt {kind} kernels ({why}) and a standalone app "
            f"cannot compile them; {how}"
        )
    if manifest.get("torch") != torch.__version__:
        return None, (
            f"the prebuilt {kind} kernels were built for torch {manifest.get('torch')}, "
            f"this bundle runs torch {torch.__version__}; {how}"
        )
    path = root / entry["file"]
    if not path.is_file():
        return None, f"the prebuilt {kind} kernels ({path}) are missing from this standalone build; {how}"
    return path, ""


def load_prebuilt(kind: str, root: Path | None = None) -> ModuleType:
    """Import a prebuilt extension file without compiling; NativeBuildError says why it cannot."""
    path, reason = prebuilt_library(kind, root)
    if path is None:
        raise NativeBuildError(reason)
    name = path.name.split(".")[0]  # the module name must match the file's PyInit_<name>
    loader = importlib.machinery.ExtensionFileLoader(name, str(path))
    spec = importlib.util.spec_from_file_location(name, path, loader=loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    try:
        loader.exec_module(module)
    except ImportError as exc:
        raise NativeBuildError(f"loading the prebuilt {kind} kernels {path} failed: {exc}") from exc
    return module


def stage_prebuilt(kind: str, dest: str | os.PathLike, build: bool = True) -> Path:
    """Copy the compiled extension (building it first when build=True) and a manifest into dest,
    for a standalone bundle. A failed build is recorded in the manifest (the frozen app then says
    why it runs the reference ops) and re-raised. Returns the manifest path."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    manifest_path = dest / PREBUILT_MANIFEST
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        manifest = {}
    if manifest.get("torch") != torch.__version__:
        manifest = {}  # files built for another torch must not ship
    manifest["torch"] = torch.__version__
    kinds = manifest.setdefault("kinds", {})
    for old in dest.glob(f"ops_cuda_{kind}_*"):
        old.unlink()
    try:
        if build:
            load_extension(kind)
        name = extension_name(kind)
        built = sorted(build_dir(kind).glob(f"{name}.so")) + sorted(build_dir(kind).glob(f"{name}.pyd"))
        if not built:
            raise NativeBuildError(f"the {kind} kernels are not built ({build_dir(kind)} has no {name}.so)")
        shutil.copy2(built[0], dest / built[0].name)
        kinds[kind] = {"file": built[0].name}
    except NativeBuildError as exc:
        kinds[kind] = {"error": str(exc)}
        raise
    finally:
        manifest_path.write_text(json.dumps(manifest, indent=1, sort_keys=True), encoding="utf-8")
    return manifest_path


@functools.cache
def load_extension(kind: str) -> ModuleType:
    """Build (first time) or load (cached) the extension; raises NativeBuildError with the reason.
    In a standalone bundle only the prebuilt file is loaded (see `load_prebuilt`)."""
    if kind not in KINDS:
        raise ValueError(f"unknown kernel kind {kind!r}; expected one of {list(KINDS)}")
    if is_frozen():
        return load_prebuilt(kind)
    reason = missing_tools(kind)
    if reason:
        raise NativeBuildError(reason)
    from torch.utils import cpp_extension

    sources, _, flags = KINDS[kind]
    folder = build_dir(kind)
    folder.mkdir(parents=True, exist_ok=True)
    kwargs = {}
    if kind == "cuda":
        kwargs["extra_cuda_cflags"] = list(CUDA_NVCC_FLAGS)
    else:
        kwargs["extra_ldflags"] = list(OPENMP_FLAGS)
    try:
        with build_lock(folder), _same_ninja_everywhere():
            return cpp_extension.load(
                name=extension_name(kind),
                sources=[str(CSRC / s) for s in sources],
                extra_cflags=list(flags if kind == "cpu" else CUDA_CFLAGS),
                extra_include_paths=[str(CSRC)],
                build_directory=str(folder),
                verbose=False,
                **kwargs,
            )
    except Exception as exc:  # compiler errors come as RuntimeError/subprocess errors
        raise NativeBuildError(
            f"building the {kind} kernels failed ({type(exc).__name__}: {str(exc).strip()[-600:]}); "
            f"see the build log in {folder}"
        ) from exc


# Locks of a build folder. torch's own `lock` (an empty file created with O_EXCL) is waited on by
# every later build for as long as it exists, and a build killed half-way (the app quit during
# its first start) leaves it behind. So every build of ours first takes BUILDER_LOCK with flock:
# the kernel releases an flock when its process dies, however it dies. Whoever holds it is the
# only builder of the folder, so a torch `lock` found then is a dead build's and is removed. The
# holder's pid is written into BUILDER_LOCK for messages ("pid 123 is building them").
TORCH_LOCK = "lock"
BUILDER_LOCK = "builder.lock"


@contextlib.contextmanager
def build_lock(folder: Path, on_wait=None):
    """Hold the folder's builder lock for the block; a torch lock left by a dead build is removed
    on entry. If a live process holds it (building right now), on_wait(pid or None) is called and
    this waits for it: its result is what we want. Without flock (Windows) nothing is waited on
    and a torch lock is only removed when its recorded builder is not running."""
    path = folder / BUILDER_LOCK
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait(_read_pid(path))
                fcntl.flock(fd, fcntl.LOCK_EX)
            _remove_dead_torch_lock(folder, _read_pid(path))
        elif not _pid_alive(_read_pid(path)):
            _remove_dead_torch_lock(folder, _read_pid(path))
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the flock


def builder_pid(kind: str) -> int | None:
    """The pid of a live process building `kind` right now (holding its builder lock), else None."""
    path = build_dir(kind) / BUILDER_LOCK
    if fcntl is None:
        pid = _read_pid(path)
        return pid if pid != os.getpid() and _pid_alive(pid) else None
    try:
        fd = os.open(path, os.O_RDWR)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return _read_pid(path) or -1  # held; -1 when the holder has not written its pid yet
    finally:
        os.close(fd)  # also releases the probe's lock at once
    return None


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _remove_dead_torch_lock(folder: Path, last_builder: int | None) -> None:
    lock = folder / TORCH_LOCK
    if not lock.exists():
        return
    who = f"pid {last_builder}, no longer running" if last_builder else "a process no longer running"
    warnings.warn(
        f"ops_cuda: removing the build lock {lock} left by an interrupted build ({who})",
        RuntimeWarning,
        stacklevel=4,
    )
    lock.unlink(missing_ok=True)


def status(kind: str) -> str:
    """'' when load_extension(kind) would be quick (already loaded or cached on disk), otherwise
    a short explanation (tools missing, or not built yet)."""
    if is_frozen():
        return prebuilt_library(kind)[1]
    if extension_name(kind) in sys.modules:  # loaded in this process
        return ""
    reason = missing_tools(kind)
    if reason:
        return reason
    if is_built(kind):
        return ""
    pid = builder_pid(kind)
    if pid:
        who = f"process {pid}" if pid > 0 else "another process"
        return f"the {kind} kernels are not built yet; {who} is building them now (cached afterwards)"
    return f"the {kind} kernels are not built yet; the first use builds them (20-60 s, cached afterwards)"
