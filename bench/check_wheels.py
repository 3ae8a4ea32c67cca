"""Every pin has a wheel for each supported CPython on manylinux, and the pins are complete.

    python -m bench.check_wheels [--python 3.11,3.12,3.13] [--arch x86_64,aarch64] [FILE ...]

Only one interpreter runs on a development machine, so the other supported versions are
checked against the package index: for each (Python version, CPU) target, `pip download
--only-binary=:all: --no-deps --python-version X.Y --platform manylinux...` fetches the wheel
of every pin (into a temporary directory; nothing is installed). Then each wheel's own
requirements, with their environment markers evaluated for that target, must be met by a
pin: so a dependency that only a newer Python pulls in cannot be left unpinned. FILEs
default to requirements.txt and requirements-dev.txt (which includes the first); `-r` lines
are followed. Exits 1 when any target lacks a wheel or a pin. `make check-wheels` runs it.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from email.parser import Parser
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FILES = ("requirements.txt", "requirements-dev.txt")
PYTHONS = ("3.11", "3.12", "3.13")
ARCHES = ("x86_64", "aarch64")
# glibc 2.28 and newer: Debian 10+, Ubuntu 20.04+, RHEL 8+, the python:3.x-slim images.
MANYLINUX_GLIBC = range(28, 16, -1)


@dataclass(frozen=True)
class Pin:
    name: str  # canonical
    version: str
    extras: frozenset[str]
    marker: Marker | None
    line: str


@dataclass
class TargetResult:
    python: str
    arch: str
    wheels: int = 0
    skipped: list[str] = field(default_factory=list)  # pins whose marker excludes this target
    no_wheel: list[str] = field(default_factory=list)
    unpinned: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.no_wheel and not self.unpinned


def read_pins(path: Path, seen: set[Path] | None = None) -> list[Pin]:
    seen = seen if seen is not None else set()
    if path in seen:
        return []
    seen.add(path)
    pins = []
    for raw in path.read_text().splitlines():
        line = raw.split(" #")[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            pins += read_pins((path.parent / line.split(maxsplit=1)[1]).resolve(), seen)
            continue
        requirement = Requirement(line)
        specifiers = list(requirement.specifier)
        if len(specifiers) != 1 or specifiers[0].operator != "==":
            raise SystemExit(f"{path.name}: {line!r} is not pinned with ==")
        pins.append(Pin(canonicalize_name(requirement.name), specifiers[0].version, frozenset(requirement.extras),
                        requirement.marker, line))
    return pins


def marker_environment(python: str, arch: str) -> dict[str, str]:
    # The oldest patch release of each minor version: markers such as
    # python_full_version < "3.11.3" then ask for the extra packages an early 3.11 needs.
    return {
        "python_version": python, "python_full_version": f"{python}.0", "implementation_name": "cpython",
        "implementation_version": f"{python}.0", "platform_python_implementation": "CPython",
        "platform_machine": arch, "platform_system": "Linux", "sys_platform": "linux", "os_name": "posix",
        "platform_release": "", "platform_version": "", "extra": "",
    }


def platforms(arch: str) -> list[str]:
    tags = [f"manylinux_2_{minor}_{arch}" for minor in MANYLINUX_GLIBC]
    tags.append(f"manylinux2014_{arch}")
    if arch == "x86_64":
        tags += [f"manylinux2010_{arch}", f"manylinux1_{arch}"]
    return tags


def download(pins: list[Pin], python: str, arch: str, directory: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", python, "--implementation", "cp", "--dest", str(directory)]
    for tag in platforms(arch):
        command += ["--platform", tag]
    command += [f"{pin.name}=={pin.version}" for pin in pins]
    return subprocess.run(command, capture_output=True, text=True)


def wheel_requirements(wheel: Path) -> tuple[str, list[Requirement]]:
    with zipfile.ZipFile(wheel) as archive:
        metadata_name = next(n for n in archive.namelist() if re.fullmatch(r"[^/]+\.dist-info/METADATA", n))
        metadata = Parser().parsestr(archive.read(metadata_name).decode())
    return canonicalize_name(metadata["Name"]), [Requirement(r) for r in metadata.get_all("Requires-Dist") or []]


def check_target(pins: list[Pin], python: str, arch: str) -> TargetResult:
    result = TargetResult(python, arch)
    environment = marker_environment(python, arch)
    wanted = []
    for pin in pins:
        if pin.marker is not None and not pin.marker.evaluate(environment):
            result.skipped.append(pin.line)
        else:
            wanted.append(pin)
    by_name = {pin.name: pin for pin in wanted}
    with tempfile.TemporaryDirectory(prefix=f"wheels-{python}-{arch}-") as tmp:
        directory = Path(tmp)
        if download(wanted, python, arch, directory).returncode != 0:
            # One call stops at the first miss; ask pin by pin to name every one.
            for pin in wanted:
                if download([pin], python, arch, directory).returncode != 0:
                    result.no_wheel.append(f"{pin.name}=={pin.version}")
        wheels = sorted(directory.glob("*.whl"))
        result.wheels = len(wheels)
        for wheel in wheels:
            name, requirements = wheel_requirements(wheel)
            extras = by_name[name].extras if name in by_name else frozenset()
            for requirement in requirements:
                if requirement.marker is not None and not any(
                        requirement.marker.evaluate({**environment, "extra": extra}) for extra in {"", *extras}):
                    continue
                pin = by_name.get(canonicalize_name(requirement.name))
                if pin is None or not requirement.specifier.contains(Version(pin.version), prereleases=True):
                    have = f"pinned {pin.version}" if pin else "not pinned"
                    result.unpinned.append(f"{name} needs {requirement.name}{requirement.specifier or ''} ({have})")
    return result


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="*", default=list(DEFAULT_FILES))
    parser.add_argument("--python", default=",".join(PYTHONS))
    parser.add_argument("--arch", default=",".join(ARCHES))
    args = parser.parse_args(argv)
    pins, seen = [], set()
    for name in args.files:
        pins += read_pins((ROOT / name).resolve(), seen)
    names = [pin.name for pin in pins]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        print(f"pinned more than once: {', '.join(duplicates)}")
        return 1
    targets = [(python, arch) for python in args.python.split(",") for arch in args.arch.split(",")]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda target: check_target(pins, *target), targets))
    print(f"{len(pins)} pins from {', '.join(args.files)}")
    for result in results:
        status = "ok" if result.ok else "FAIL"
        print(f"CPython {result.python} manylinux {result.arch:<8} {status:<4} {result.wheels} wheels"
              + (f", {len(result.skipped)} pins not for this target" if result.skipped else ""))
        for line in result.no_wheel:
            print(f"    no wheel: {line}")
        for line in result.unpinned:
            print(f"    {line}")
    return 0 if all(result.ok for result in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
