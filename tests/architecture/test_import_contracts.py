"""The import contracts of pyproject.toml (design.md §2) hold, and they do catch what they forbid.

Each case copies the apps' source to a temporary directory, adds one deliberate import, and runs
import-linter there as `make lint` does: an upward import breaks the chain, an import of another
app's private module breaks the public face, and an import of an app's own private module (or of
another app's face) breaks nothing.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
APPS = ("portal", "schools", "transcripts", "signing", "registry", "config")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")

pytestmark = pytest.mark.slow


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"], cwd=tree, capture_output=True, text=True, timeout=120, check=False
    )


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("apps")
    for app in APPS:
        shutil.copytree(ROOT / app, root / app, ignore=shutil.ignore_patterns("__pycache__", "migrations"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


@pytest.fixture
def extra(tree: Path):
    """Write one module into the copy; removed again after the test."""
    written: list[Path] = []

    def write(module: str, source: str) -> None:
        path = tree / (module.replace(".", "/") + ".py")
        path.write_text(source, encoding="utf-8")
        written.append(path)

    yield write
    for path in written:
        path.unlink()


def test_the_project_keeps_both_contracts(tree: Path) -> None:
    result = _lint(tree)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_an_upward_import_breaks_the_chain(tree: Path, extra) -> None:
    extra("portal.zz_upward", "from transcripts.selectors import active_enrolments  # noqa\n")
    result = _lint(tree)
    assert result.returncode == 1
    assert "chain" in result.stdout and "BROKEN" in result.stdout
    assert "portal.zz_upward -> transcripts.selectors" in result.stdout


def test_an_upward_import_inside_a_function_breaks_it_too(tree: Path, extra) -> None:
    extra("schools.zz_hidden", "def f():\n    from signing.services import signing_batch_start  # noqa\n")
    result = _lint(tree)
    assert result.returncode == 1
    assert "schools.zz_hidden -> signing.services" in result.stdout


def test_another_apps_private_module_breaks_the_face(tree: Path, extra) -> None:
    extra("transcripts.zz_private", "from schools.curriculum import SUBJECT_NAMES  # noqa\n")
    result = _lint(tree)
    assert result.returncode == 1
    assert "- transcripts.zz_private -> schools.curriculum (l.1)" in result.stdout
    assert "chain: registry > signing > transcripts > schools > portal KEPT" in result.stdout


def test_a_deeper_private_module_breaks_the_face(tree: Path, extra) -> None:
    # signing.services is signing's face; signing.services.runner is not.
    extra("registry.zz_deep", "from signing.services.runner import signing_batch_run  # noqa\n")
    result = _lint(tree)
    assert result.returncode == 1
    assert "- registry.zz_deep -> signing.services.runner (l.1)" in result.stdout


def test_own_private_modules_and_other_faces_are_allowed(tree: Path, extra) -> None:
    extra(
        "transcripts.zz_fine",
        "from schools.selectors import school_year_current  # noqa\n"
        "from transcripts.rules import tt22  # noqa\n"
        "from transcripts.records.services import year_record_sign  # noqa\n",
    )
    result = _lint(tree)
    assert result.returncode == 0, result.stdout
