"""requirements.lock is in step with pyproject.toml, and the venv holds what the lock pins.

Offline and quick: it reads pyproject.toml, the lock and the installed distributions' metadata.
When it fails after pyproject.toml changed, run `make lock` (README, "Dependencies are locked");
when only the venv disagrees, `make setup` installs the lock.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"
PYPROJECT = ROOT / "pyproject.toml"
LOCKED_EXTRAS = ("vision", "test")  # the extras `make lock` resolves with the runtime dependencies

_REQUIREMENT_LINE = re.compile(r"^(?P<spec>[A-Za-z0-9][^\s\\]*)\s*\\?$")
_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;=<>!~,]+)$")


@dataclass
class LockEntry:
    version: str
    hashes: int = 0
    direct: bool = False  # annotated "via <project> (pyproject.toml)"


@dataclass
class Lock:
    entries: dict[str, LockEntry] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def declared_requirements(pyproject_text: str) -> tuple[str, dict[str, Requirement]]:
    """The project's name and its runtime plus locked-extra requirements, by canonical name."""
    project = tomllib.loads(pyproject_text)["project"]
    specs = list(project.get("dependencies", []))
    optional = project.get("optional-dependencies", {})
    for extra in LOCKED_EXTRAS:
        specs += optional.get(extra, [])
    requirements = {}
    for spec in specs:
        requirement = Requirement(spec)
        requirements[canonicalize_name(requirement.name)] = requirement
    return project["name"], requirements


def parse_lock(lock_text: str, project_name: str) -> Lock:
    """pip-compile's output: `name==version \\` at the line start, then its hashes and `# via` notes."""
    lock = Lock()
    via_project = f"{project_name} (pyproject.toml)"
    current: LockEntry | None = None
    for number, raw in enumerate(lock_text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            continue
        if raw[0].isspace():  # belongs to the requirement above it
            if current is None:
                lock.problems.append(f"line {number}: indented line outside a requirement: {line!r}")
            elif line.startswith("--hash="):
                current.hashes += 1
            elif line.startswith("#") and via_project in line:
                current.direct = True
            continue
        current = None
        if line.startswith(("#", "--")):  # comments, index and find-links options
            continue
        match = _REQUIREMENT_LINE.match(line)
        pin = _PIN.match(match["spec"]) if match else None
        if pin is None:
            lock.problems.append(f"line {number}: not an exact `name==version` pin: {line!r}")
            continue
        name = canonicalize_name(pin["name"])
        if name in lock.entries:
            lock.problems.append(f"line {number}: {name} is pinned twice")
        current = lock.entries[name] = LockEntry(pin["version"])
    for name, entry in lock.entries.items():
        if entry.hashes == 0:
            lock.problems.append(f"{name}=={entry.version} has no --hash (pip install --require-hashes refuses it)")
    return lock


def lock_problems(pyproject_text: str, lock_text: str) -> list[str]:
    """Every way the lock is out of step with pyproject.toml; empty when it is in step."""
    project_name, declared = declared_requirements(pyproject_text)
    lock = parse_lock(lock_text, project_name)
    problems = list(lock.problems)
    for name, requirement in sorted(declared.items()):
        entry = lock.entries.get(name)
        if entry is None:
            problems.append(f"{requirement} is in pyproject.toml but not pinned in the lock")
        elif not requirement.specifier.contains(Version(entry.version), prereleases=True):
            problems.append(f"the lock pins {name}=={entry.version}, outside pyproject.toml's {requirement}")
    direct = {name for name, entry in lock.entries.items() if entry.direct}
    for name in sorted(direct - declared.keys()):
        problems.append(f"the lock has {name} from pyproject.toml, which no longer asks for it")
    for name in sorted((declared.keys() & lock.entries.keys()) - direct):
        problems.append(f"the lock does not say {name} comes from pyproject.toml: not made from this pyproject.toml")
    return problems


def venv_problems(lock_text: str, project_name: str, installed_version=metadata.version) -> list[str]:
    """Every locked package that the running environment lacks or holds at another version."""
    problems = []
    for name, entry in sorted(parse_lock(lock_text, project_name).entries.items()):
        try:
            have = installed_version(name)
        except metadata.PackageNotFoundError:
            problems.append(f"{name}=={entry.version} is locked but not installed")
            continue
        if Version(have) != Version(entry.version):
            problems.append(f"{name}: the lock pins {entry.version}, the venv has {have}")
    return problems


def test_lock_is_in_step_with_pyproject():
    problems = lock_problems(PYPROJECT.read_text(), LOCK.read_text())
    assert not problems, "requirements.lock is out of date; run `make lock`:\n" + "\n".join(problems)


def test_venv_holds_the_locked_versions():
    project_name, _ = declared_requirements(PYPROJECT.read_text())
    problems = venv_problems(LOCK.read_text(), project_name)
    assert not problems, "the venv is not the locked set; run `make setup`:\n" + "\n".join(problems)


def test_torch_is_the_cpu_build_the_vision_extra_asks_for():
    project_name, declared = declared_requirements(PYPROJECT.read_text())
    entry = parse_lock(LOCK.read_text(), project_name).entries["torch"]
    assert declared["torch"].specifier.contains(Version(entry.version))
    assert Version(entry.version).local == "cpu", "torch should come from the machine's CPU wheel, not PyPI's CUDA build"


# The checks above must be able to fail: each below breaks a copy of the real files one way.

_MINI_PYPROJECT = """
[project]
name = "onemap"
dependencies = ["Django>=5.2,<5.3", "numpy>=1.26"]
[project.optional-dependencies]
vision = ["torch==2.13.0"]
test = ["pytest>=8"]
other = ["not-locked-on-purpose>=1"]
"""

_MINI_LOCK = """\
#    make lock
--find-links /opt/wheels

django==5.2.20 \\
    --hash=sha256:aa
    # via onemap (pyproject.toml)
numpy==2.4.6 \\
    --hash=sha256:bb \\
    --hash=sha256:cc
    # via
    #   onemap (pyproject.toml)
    #   pandas
pytest==9.2.0 \\
    --hash=sha256:dd
    # via onemap (pyproject.toml)
torch==2.13.0+cpu \\
    --hash=sha256:ee
    # via onemap (pyproject.toml)
"""


def test_the_checks_pass_a_lock_in_step():
    assert lock_problems(_MINI_PYPROJECT, _MINI_LOCK) == []
    versions = {"django": "5.2.20", "numpy": "2.4.6", "pytest": "9.2.0", "torch": "2.13.0+cpu"}
    assert venv_problems(_MINI_LOCK, "onemap", versions.__getitem__) == []


@pytest.mark.parametrize(
    ("pyproject", "lock", "expected"),
    [
        # a dependency added to pyproject.toml without `make lock`
        (_MINI_PYPROJECT.replace('"numpy>=1.26"', '"numpy>=1.26", "rich>=13"'), _MINI_LOCK, "rich>=13 is in pyproject.toml"),
        # a bound raised past the pin
        (_MINI_PYPROJECT.replace("Django>=5.2,<5.3", "Django>=5.3"), _MINI_LOCK, "outside pyproject.toml's Django>=5.3"),
        # a dependency dropped from pyproject.toml but still locked as its own
        (_MINI_PYPROJECT.replace('test = ["pytest>=8"]', "test = []"), _MINI_LOCK, "pytest from pyproject.toml, which no"),
        # a loose pin
        (_MINI_PYPROJECT, _MINI_LOCK.replace("numpy==2.4.6", "numpy>=2.4.6"), "not an exact `name==version` pin"),
        # a pin without hashes
        (_MINI_PYPROJECT, _MINI_LOCK.replace("    --hash=sha256:dd\n", ""), "pytest==9.2.0 has no --hash"),
        # a lock not made from this pyproject.toml (no "via" notes)
        (_MINI_PYPROJECT, _MINI_LOCK.replace("    # via onemap (pyproject.toml)\n", ""), "does not say django comes"),
    ],
)
def test_the_lock_check_fails_when_out_of_step(pyproject, lock, expected):
    problems = lock_problems(pyproject, lock)
    assert any(expected in problem for problem in problems), problems


def test_the_venv_check_fails_on_another_version_or_a_missing_package():
    versions = {"django": "5.2.21", "numpy": "2.4.6", "pytest": "9.2.0"}

    def installed(name):
        if name not in versions:
            raise metadata.PackageNotFoundError(name)
        return versions[name]

    problems = venv_problems(_MINI_LOCK, "onemap", installed)
    assert "django: the lock pins 5.2.20, the venv has 5.2.21" in problems
    assert "torch==2.13.0+cpu is locked but not installed" in problems
