"""Mutation testing of the guard-bearing modules (`make mutate`; not part of CI).

Cosmic Ray mutates each module one mutant at a time and runs a targeted subset of the tests
(MODULES below: module -> test files, guard tests first, `-x`) so a mutant costs seconds. It then
prints, per module: mutants, killed, survived, timeouts, kill rate and every survivor
(file:line, operator, the line before and after).

Why Cosmic Ray and not mutmut 3: mutmut 3 never mutates a decorated function (its trampolines
cannot carry a decorator), and most of our guards are in `@transaction.atomic` services. Cosmic
Ray rewrites the file and runs the tests in a subprocess, which suits pytest-django with a real
PostgreSQL (`--reuse-db`: the test database is built once, then every run finds it again).

Cosmic Ray edits the files it mutates, so it never runs in the developer's checkout: this script
copies the tree (tracked and untracked, not ignored: what `git ls-files` lists) to a temporary
directory and mutates there. The developer's files are only read.

The operators are those that break a guard: a condition negated (AddNot, `not` removed),
`and`/`or` swapped, True/False swapped, `==`/`!=` and `is`/`is not` flipped, a boundary moved
(`<` to `<=` and back), an exception clause that catches something else, a loop that runs zero
times, break/continue swapped. Arithmetic, number and decorator mutants are not generated
(docs/mutation.md says why).

Usage: python scripts/mutate.py [--module portal/services.py ...] [--head] [--keep] [--report FILE]
Environment: MUTATE_DATABASE_URL, MUTATE_REDIS_URL; by default the servers of DATABASE_URL and
REDIS_URL (or the local ones) with a database of its own: hocba_mutate, Redis db 7.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import random
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent

# module -> the tests that exercise it; the guard tests come first, so `-x` stops early.
MODULES: dict[str, list[str]] = {
    "portal/permissions.py": [
        "tests/portal/test_guards_*.py",
        "tests/portal/test_delegation.py",
        "tests/portal/test_admin_scoping.py",
    ],
    "portal/services.py": [
        "tests/portal/test_guards_*.py",
        "tests/portal/test_delegation.py",
        "tests/portal/test_provisioning.py",
    ],
    "signing/services": [
        "tests/signing/test_guards_*.py",
        "tests/signing/test_batches.py",
        "tests/signing/test_csc.py",
        "tests/signing/test_batch_backends.py",
    ],
    "signing/verify.py": [
        "tests/signing/test_guards_verify*.py",
        "tests/signing/test_profile_fast.py",
        "tests/signing/test_profile.py",
        "tests/signing/test_trust.py",
    ],
    "transcripts/services.py": [
        "tests/transcripts/test_guards_*.py",
        "tests/transcripts/test_gradebook.py",
        "tests/transcripts/test_homeroom.py",
    ],
    "transcripts/yearclose.py": [
        "tests/transcripts/test_guards_*.py",
        "tests/transcripts/test_year_close.py",
    ],
}

# Operators left out, and why (docs/mutation.md): arithmetic and numbers (no guard is arithmetic;
# they mostly move slices of audit summaries), decorators (removing @transaction.atomic changes
# nothing a single-threaded test sees; removing @dataclass breaks imports), variable swaps (noise),
# comparisons turned into orderings (`==` to `<`: a TypeError on strings, killed for no merit).
EXCLUDED_OPERATORS = [
    r"core/ReplaceBinaryOperator_.*",
    r"core/NumberReplacer",
    r"core/RemoveDecorator",
    r"core/VariableReplacer",
    r"core/VariableInserter",
    r"core/ReplaceUnaryOperator_(UAdd|USub|Invert)_.*",
    r"core/ReplaceUnaryOperator_Delete_(USub|Invert)",
    r"core/ReplaceComparisonOperator_(Eq|NotEq)_(Lt|LtE|Gt|GtE|Is|IsNot)",
    r"core/ReplaceComparisonOperator_(Is|IsNot)_(Eq|NotEq|Lt|LtE|Gt|GtE)",
    r"core/ReplaceComparisonOperator_(Lt|LtE|Gt|GtE)_(Eq|NotEq|Is|IsNot)",
    r"core/ReplaceComparisonOperator_Lt_Gt",
    r"core/ReplaceComparisonOperator_Lt_GtE",
    r"core/ReplaceComparisonOperator_LtE_Gt",
    r"core/ReplaceComparisonOperator_LtE_GtE",
    r"core/ReplaceComparisonOperator_Gt_Lt",
    r"core/ReplaceComparisonOperator_Gt_LtE",
    r"core/ReplaceComparisonOperator_GtE_Lt",
    r"core/ReplaceComparisonOperator_GtE_LtE",
]


@dataclass
class Survivor:
    file: str
    line: int
    operator: str
    before: str
    after: str


@dataclass
class ModuleResult:
    module: str
    generated: int = 0  # mutants generated (before any sampling)
    mutants: int = 0  # mutants run
    killed: int = 0
    survived: int = 0
    timeouts: int = 0
    incompetent: int = 0
    seconds: float = 0.0
    survivors: list[Survivor] = field(default_factory=list)

    @property
    def kill_rate(self) -> float:
        return 100.0 * (self.killed + self.timeouts) / self.mutants if self.mutants else 0.0


def copy_tree(target: Path, *, head: bool) -> None:
    """The working tree as the developer has it (tracked and untracked, not ignored files), or
    the last commit (`head`: in a checkout shared with others' half-done work)."""
    if head:
        archive = subprocess.run(
            ["git", "archive", "--format=tar", "HEAD"], cwd=ROOT, capture_output=True, check=True
        )
        subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
        return
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    for raw in listed:
        if not raw:
            continue
        relative = raw.decode()
        source = ROOT / relative
        if not source.is_file():
            continue  # deleted in the work tree, not yet committed
        destination = target / relative
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, destination)


def test_files(tree: Path, patterns: list[str]) -> list[str]:
    files: list[str] = []
    for pattern in patterns:
        for match in sorted(glob.glob(pattern, root_dir=tree)):
            if match not in files:
                files.append(match)
    return files


def pytest_command(tests: list[str], *extra: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-x", "-q", "--no-header", "-p", "no:randomly", *extra, *tests]


def run(command: list[str], *, cwd: Path, env: dict[str, str], check: bool = True, quiet: bool = False):
    output = subprocess.PIPE if quiet else None
    return subprocess.run(command, cwd=cwd, env=env, check=check, stdout=output, stderr=output, text=True)


def mutate_module(
    module: str, tree: Path, env: dict[str, str], *, sample: int = 0, seed: int = 0
) -> ModuleResult:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    tests = test_files(tree, MODULES[module])
    result = ModuleResult(module)
    started = time.monotonic()
    # The baseline: the targeted tests pass on the unmutated code, and how long they take.
    before = time.monotonic()
    baseline = run(pytest_command(tests), cwd=tree, env=env, check=False, quiet=True)
    if baseline.returncode != 0:
        print(baseline.stdout[-3000:], file=sys.stderr)
        raise SystemExit(f"{module}: the tests fail without any mutation; fix them first")
    timeout = max(30.0, 4 * (time.monotonic() - before) + 10)
    name = module.replace("/", "_").removesuffix(".py")
    config = tree / f"mutate-{name}.toml"
    session = tree / f"mutate-{name}.sqlite"
    config.write_text(
        "[cosmic-ray]\n"
        f"module-path = {json.dumps(module)}\n"
        f"timeout = {timeout:.0f}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(shlex.join(pytest_command(tests)))}\n"
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
        "[cosmic-ray.filters.operators-filter]\n"
        f"exclude-operators = {json.dumps(EXCLUDED_OPERATORS)}\n"
    )
    bindir = Path(sys.executable).parent
    run([str(bindir / "cosmic-ray"), "init", str(config), str(session)], cwd=tree, env=env, quiet=True)
    run([str(bindir / "cr-filter-operators"), str(session), str(config)], cwd=tree, env=env, quiet=True)
    with use_db(str(session), WorkDB.Mode.open) as db:
        # In source order (job ids are random): the same code and seed give the same sample.
        pending = sorted(db.pending_work_items, key=_place)
        result.generated = len(pending)
        if sample and sample < len(pending):
            # A seeded random sample (the same one on every run of the same code): the rest is
            # marked as not run, and the report says the figures are a sample's.
            keep = {item.job_id for item in random.Random(seed).sample(pending, sample)}  # noqa: S311 -- a sample, not a secret
            for item in pending:
                if item.job_id not in keep:
                    db.set_result(
                        item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output="not sampled")
                    )
            pending = [item for item in pending if item.job_id in keep]
    print(
        f"{module}: {len(pending)} of {result.generated} mutants, {len(tests)} test files, "
        f"timeout {timeout:.0f} s",
        flush=True,
    )
    run([str(bindir / "cosmic-ray"), "exec", str(config), str(session)], cwd=tree, env=env, quiet=True)

    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, outcome in db.completed_work_items:
            if outcome.worker_outcome in ("skipped", "no-test"):
                continue
            result.mutants += 1
            if outcome.test_outcome == "survived":
                result.survived += 1
                mutation = item.mutations[0]
                before_line, after_line = _diff_lines(outcome.diff or "")
                result.survivors.append(
                    Survivor(
                        file=str(mutation.module_path),
                        line=mutation.start_pos[0],
                        operator=mutation.operator_name.removeprefix("core/"),
                        before=before_line,
                        after=after_line,
                    )
                )
            elif outcome.test_outcome == "incompetent":
                result.incompetent += 1  # the mutant could not be run: counted as not killed
            elif outcome.output == "timeout":
                result.timeouts += 1
            else:
                result.killed += 1
    result.survivors.sort(key=lambda s: (s.file, s.line, s.operator))
    result.seconds = time.monotonic() - started
    return result


def _place(item) -> tuple:
    mutation = item.mutations[0]
    return (str(mutation.module_path), tuple(mutation.start_pos), mutation.operator_name, mutation.occurrence)


def _diff_lines(diff: str) -> tuple[str, str]:
    removed = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("-") and not ln.startswith("---")]
    added = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    return " / ".join(removed), " / ".join(added)


def report(results: list[ModuleResult]) -> str:
    lines = [
        f"{'module':26} {'generated':>9} {'run':>5} {'killed':>6} {'survived':>8} {'timeouts':>8} {'rate':>6}"
        "",
    ]
    total = ModuleResult("overall")
    for r in results:
        lines.append(
            f"{r.module:26} {r.generated:9} {r.mutants:5} {r.killed:6} {r.survived:8} {r.timeouts:8} "
            f"{r.kill_rate:5.1f}%"
        )
        for name in ("generated", "mutants", "killed", "survived", "timeouts", "incompetent"):
            setattr(total, name, getattr(total, name) + getattr(r, name))
    lines.append(
        f"{'overall':26} {total.generated:9} {total.mutants:5} {total.killed:6} {total.survived:8} "
        f"{total.timeouts:8} {total.kill_rate:5.1f}%"
    )
    for r in results:
        if r.incompetent:
            lines.append(f"{r.module}: {r.incompetent} mutants could not be run (counted as not killed)")
    for r in results:
        if not r.survivors:
            continue
        lines.append("")
        lines.append(f"Survivors in {r.module}:")
        counts = Counter(s.operator for s in r.survivors)
        for s in r.survivors:
            lines.append(f"  {s.file}:{s.line}  {s.operator}")
            lines.append(f"      - {s.before}")
            lines.append(f"      + {s.after}")
        lines.append("  by operator: " + ", ".join(f"{k} {v}" for k, v in counts.most_common()))
    return "\n".join(lines)


def _with_path(url: str, path: str) -> str:
    """The same server, its own database: mutants never touch a developer's data or tests."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + path, parts.query, parts.fragment))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", action="append", choices=list(MODULES), help="only these modules")
    parser.add_argument("--keep", action="store_true", help="keep the mutated copy (its path is printed)")
    parser.add_argument(
        "--sample", type=int, default=0, help="run only this many mutants per module (a seeded random sample)"
    )
    parser.add_argument("--seed", type=int, default=2026, help="the sample's seed")
    parser.add_argument("--head", action="store_true", help="mutate the last commit, not the work tree")
    parser.add_argument("--report", type=Path, help="also write the results as JSON to this file")
    args = parser.parse_args()
    modules = args.module or list(MODULES)

    # Stopped (Ctrl-C, kill): still remove the copy (the `finally` below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    tree = Path(tempfile.mkdtemp(prefix="hocba-mutate-"))
    env = {
        **os.environ,
        "DATABASE_URL": os.environ.get("MUTATE_DATABASE_URL")
        or _with_path(
            os.environ.get("DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/"), "hocba_mutate"
        ),
        "REDIS_URL": os.environ.get("MUTATE_REDIS_URL")
        or _with_path(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/"), "7"),
        # A mutant and the next one can have the same size and mtime: never trust a .pyc.
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    try:
        copy_tree(tree, head=args.head)
        where = run(
            [sys.executable, "-c", "import portal; print(portal.__file__)"], cwd=tree, env=env, quiet=True
        ).stdout.strip()
        if not where.startswith(str(tree)):
            raise SystemExit(f"the copy imports the checkout's code ({where}); refusing to mutate")
        print(f"Mutating a copy of the tree in {tree} (the checkout is not touched)", flush=True)
        # The test database, built afresh once (migrations may have changed since the last run).
        run(pytest_command(["tests/portal/test_delegation.py"], "--create-db"), cwd=tree, env=env, quiet=True)
        results = [mutate_module(module, tree, env, sample=args.sample, seed=args.seed) for module in modules]
    finally:
        if args.keep:
            print(f"Kept the mutated copy in {tree}")
        else:
            shutil.rmtree(tree, ignore_errors=True)
    text = report(results)
    print()
    print(text)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(
            json.dumps(
                [{**asdict(r), "kill_rate": round(r.kill_rate, 1)} for r in results],
                ensure_ascii=False,
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
