"""The aarch64 Python that `python -m edge_sr.armcheck` runs under qemu-aarch64, built once into the cache.

Debian 12's arm64 python3.11 packages unpacked into a sysroot (fetched with apt-get into a private apt state: the
host's package setup is not touched), with the host's ai-edge-litert and numpy versions as manylinux aarch64
wheels. qemu-aarch64 runs it with `-L sysroot`."""

import importlib.metadata
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from edge_sr.errors import EdgeSRError

PYTHON = "3.11"  # Debian 12's python3, and a tag ai-edge-litert publishes aarch64 wheels for
DEBIAN_PACKAGES = (f"python{PYTHON}-minimal", f"libpython{PYTHON}-stdlib", "libstdc++6")
WHEELS = ("ai-edge-litert", "numpy")  # at the host's versions


def qemu():
    """The qemu-aarch64 executable: $EDGE_SR_QEMU, else the one on the PATH."""
    chosen = os.environ.get("EDGE_SR_QEMU")
    path = shutil.which(chosen) if chosen else shutil.which("qemu-aarch64") or shutil.which("qemu-aarch64-static")
    if path is None:
        where = f"at {chosen} ($EDGE_SR_QEMU)" if chosen else "on the PATH"
        raise EdgeSRError(f"no qemu-aarch64 {where}: install qemu-user (Debian/Ubuntu: apt-get install qemu-user)")
    return path


def qemu_version():
    """The first line of `qemu-aarch64 --version`: "qemu-aarch64 version 7.2.22 (Debian 1:7.2+dfsg-7+deb12u18+b3)"."""
    result = subprocess.run([qemu(), "--version"], capture_output=True, text=True)
    return (result.stdout.strip().splitlines() or ["qemu-aarch64 (version unknown)"])[0]


def arm64_root():
    """Where the aarch64 Python lives: $EDGE_SR_ARM64_ROOT, else a folder of the edge_sr cache named after the
    versions it holds."""
    if os.environ.get("EDGE_SR_ARM64_ROOT"):
        return Path(os.environ["EDGE_SR_ARM64_ROOT"])
    from edge_sr.data import cache_dir

    versions = "-".join(f"{name}{importlib.metadata.version(name)}" for name in WHEELS)
    return cache_dir() / "arm64" / f"python{PYTHON}-{versions}"


def _site_packages(root):
    return root / "usr" / "lib" / "python3" / "dist-packages"  # on Debian's python3.11 path


def _complete(root):
    return (root / ".complete").is_file()


def ensure_arm64_root(build=True):
    """The aarch64 root, built first if it is missing and `build` (else a missing one is an EdgeSRError)."""
    root = arm64_root()
    if _complete(root):
        return root
    if not build:
        raise EdgeSRError(
            f"no arm64 Python at {root}: build it with `python -m edge_sr.armcheck --setup` (or `make arm64-root`; "
            "needs apt-get, dpkg-deb and network access)"
        )
    build_arm64_root(root)
    return root


def build_arm64_root(root):
    """Unpack Debian's arm64 python3.11 and its libraries into `root` and install the aarch64 wheels of the host's
    ai-edge-litert and numpy into it. Built beside `root` and renamed into place."""
    for tool in ("apt-get", "dpkg-deb"):
        if shutil.which(tool) is None:
            raise EdgeSRError(
                f"building the arm64 Python needs {tool} (a Debian 12 host), or set EDGE_SR_ARM64_ROOT to a root "
                "built there with `make arm64-root`"
            )
    root = Path(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=root.parent, prefix=f".{root.name}."))
    try:
        sysroot = work / "root"
        for deb in _download_debs(work / "apt"):
            _run(["dpkg-deb", "-x", str(deb), str(sysroot)], f"unpacking {deb.name}")
        wheels = [f"{name}=={importlib.metadata.version(name)}" for name in WHEELS]
        _run(
            [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-warn-conflicts",
             "--only-binary=:all:", "--platform", "manylinux_2_27_aarch64", "--python-version", PYTHON,
             "--implementation", "cp", "--target", str(_site_packages(sysroot)), *wheels],
            f"pip install of the aarch64 wheels {' '.join(wheels)}",
        )  # fmt: skip
        (sysroot / ".complete").touch()
        shutil.rmtree(root, ignore_errors=True)
        os.replace(sysroot, root)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _download_debs(state):
    """Debian's arm64 packages (DEBIAN_PACKAGES and what they depend on), downloaded with apt-get from the host's
    package sources into a private apt state: nothing of the host's package setup changes."""
    for folder in ("lists/partial", "archives/partial"):
        (state / folder).mkdir(parents=True, exist_ok=True)
    (state / "status").touch()
    options = [
        f"-oDir::State={state}", f"-oDir::State::Lists={state / 'lists'}", f"-oDir::State::status={state / 'status'}",
        f"-oDir::Cache={state}", f"-oDir::Cache::Archives={state / 'archives'}", "-oAPT::Architecture=arm64",
        "-oAPT::Architectures=arm64", "-oDebug::NoLocking=1", "-qq",
    ]  # fmt: skip
    _run(["apt-get", *options, "update"], "apt-get update (arm64 package lists)")
    _run(
        ["apt-get", *options, "install", "--download-only", "--no-install-recommends", "-y", *DEBIAN_PACKAGES],
        f"apt-get download of the arm64 packages {' '.join(DEBIAN_PACKAGES)} (Debian 12 has them)",
    )
    return sorted((state / "archives").glob("*.deb"))


def _run(command, what):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        lines = (result.stderr or result.stdout).strip().splitlines()
        raise EdgeSRError(f"{what} failed ({lines[-1] if lines else f'exit {result.returncode}'})")


COUNTER = Path(__file__).with_name("insn_count.c")


def counter_plugin(root):
    """The instruction-counting qemu plugin (edge_sr/bench/insn_count.c), compiled into `root` on first use."""
    import hashlib

    source = COUNTER.read_bytes()
    plugin = root / f"insn_count-{hashlib.sha256(source).hexdigest()[:12]}.so"
    if not plugin.is_file():
        compiler = shutil.which(os.environ.get("CC") or "cc") or shutil.which("gcc")
        if compiler is None:
            raise EdgeSRError("counting instructions needs a C compiler for the qemu plugin: install gcc")
        partial = plugin.with_suffix(".partial")
        _run([compiler, "-shared", "-fPIC", "-O2", "-fvisibility=hidden", "-o", str(partial), str(COUNTER)],
             f"compiling {COUNTER.name}")  # fmt: skip
        os.replace(partial, plugin)
    return plugin
