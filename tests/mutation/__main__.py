"""`python -m tests.mutation`: apply each curated mutant and run the tests that must kill it.

Each worker copies the tree into a temporary folder once and imports `gateway` and
`nodes` from there (PYTHONPATH comes before the editable install); a mutant is written
into that copy, its tests run with `-x`, and the original file is written back. The
working tree is only read, so a crash or Ctrl-C cannot leave a check removed in it.
Exit status: 0 if every mutant was killed, 1 if any survived or could not be run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from queue import Queue

from tests.mutation import ROOT, Mutant, MutantError, load_mutants

IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "var", "build", "__pycache__", "*.egg-info", ".*_cache", "*.pyc"
)


RUNNING: set[subprocess.Popen[str]] = set()
"""The pytest runs under way, killed (with their process groups) on Ctrl-C."""
_RUNNING_LOCK = threading.Lock()


def kill_running() -> None:
    with _RUNNING_LOCK:
        for process in RUNNING:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


def interrupted(_signum: int, _frame: object) -> None:
    """SIGTERM ends the run like Ctrl-C: children killed, scratch copies removed."""
    raise KeyboardInterrupt


@dataclass(frozen=True)
class Outcome:
    mutant: Mutant
    verdict: str
    """killed, survived, timeout (killed by hanging), or error (not applied or no tests ran)."""
    seconds: float
    detail: str


@contextmanager
def scratch_tree() -> Iterator[Path]:
    """A throw-away copy of the working tree, removed however the run ends."""
    folder = Path(tempfile.mkdtemp(prefix="mutate-"))
    try:
        tree = folder / "tree"
        shutil.copytree(ROOT, tree, ignore=IGNORED, symlinks=True)
        yield tree
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def environment(tree: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(tree), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no stale bytecode of a mutated file
    return env


def check_imports_from(tree: Path) -> None:
    """Refuse to run unless the copy, not the working tree, is what the tests import."""
    probe = "import gateway, nodes; print(gateway.__file__); print(nodes.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tree,
        env=environment(tree),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout.split()
    if not all(Path(p).resolve().is_relative_to(tree.resolve()) for p in out):
        raise SystemExit(f"error: tests would import {out}, not the scratch copy in {tree}")


def run_tests(tree: Path, tests: Sequence[str], timeout_s: float) -> tuple[str, str, float]:
    """(verdict, detail, seconds) of one pytest run in `tree`, its process group killed on exit."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
        "--no-header",
        *tests,
    ]
    started = time.monotonic()
    process = subprocess.Popen(
        command,
        cwd=tree,
        env=environment(tree),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    with _RUNNING_LOCK:
        RUNNING.add(process)
    try:
        output, _ = process.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.communicate()
        return "timeout", f"tests still running after {timeout_s:g} s", time.monotonic() - started
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise
    finally:
        with _RUNNING_LOCK:
            RUNNING.discard(process)
    seconds = time.monotonic() - started
    failed = [line for line in output.splitlines() if line.startswith(("FAILED ", "ERROR tests"))]
    if process.returncode == 0:
        return "survived", output.strip().splitlines()[-1] if output.strip() else "", seconds
    if process.returncode == 1:
        return "killed", (failed[0] if failed else "tests failed")[:160], seconds
    tail = " | ".join(output.strip().splitlines()[-3:])
    return "error", f"pytest exit {process.returncode}: {tail}"[:300], seconds


def try_mutant(tree: Path, mutant: Mutant, timeout_s: float) -> Outcome:
    target = tree / mutant.file
    original = target.read_text()
    try:
        mutated = mutant.apply(original)
    except MutantError as exc:
        return Outcome(mutant, "error", 0.0, str(exc))
    target.write_text(mutated)
    try:
        verdict, detail, seconds = run_tests(tree, mutant.tests, timeout_s)
    finally:
        target.write_text(original)
    return Outcome(mutant, verdict, seconds, detail)


def baseline(tree: Path, selection: tuple[str, ...], timeout_s: float) -> str:
    """'' if `selection` passes unmutated (else a kill would prove nothing), or why not.

    Each mutant's selection runs on its own, as its mutant will: run together, some
    modules of different consortia disturb each other (shared ports, gRPC's process-wide
    channel state), which says nothing about a check.
    """
    verdict, detail, _ = run_tests(tree, selection, timeout_s)
    return "" if verdict == "survived" else f"{' '.join(selection)}: {verdict} {detail}"


def report(outcomes: Sequence[Outcome], seconds: float) -> str:
    counts = {v: sum(o.verdict == v for o in outcomes) for v in ("killed", "timeout")}
    bad = [o for o in outcomes if o.verdict in ("survived", "error")]
    lines = [
        f"{len(outcomes)} mutants: {counts['killed']} killed, {counts['timeout']} killed by "
        f"timeout, {sum(o.verdict == 'survived' for o in bad)} survived, "
        f"{sum(o.verdict == 'error' for o in bad)} errors, in {seconds / 60:.1f} min"
    ]
    lines += [f"  {o.verdict.upper()}: {o.mutant.id} ({o.mutant.what}) {o.detail}" for o in bad]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__)
    parser.add_argument("ids", nargs="*", help="run only these mutants (default: all)")
    parser.add_argument("--jobs", type=int, default=1, help="mutants run at once (default 1)")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per mutant's tests")
    parser.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    parser.add_argument("--list", action="store_true", help="list the mutants and exit")
    args = parser.parse_args(argv)

    mutants = load_mutants()
    if args.ids:
        known = {m.id for m in mutants}
        unknown = [i for i in args.ids if i not in known]
        if unknown:
            print(f"error: no mutant named {', '.join(unknown)}", file=sys.stderr)
            return 2
        mutants = [m for m in mutants if m.id in args.ids]
    if args.list:
        for m in mutants:
            print(f"{m.id:40} {m.file}: {m.what}")
        return 0

    started = time.monotonic()
    jobs = max(1, min(args.jobs, len(mutants)))
    outcomes: list[Outcome] = []
    with ExitStack() as stack:
        trees = [stack.enter_context(scratch_tree()) for _ in range(jobs)]
        check_imports_from(trees[0])
        free: Queue[Path] = Queue()
        for tree in trees:
            free.put(tree)
        if not args.no_baseline:
            selections = sorted({m.tests for m in mutants})

            def unmutated(selection: tuple[str, ...]) -> str:
                tree = free.get()
                try:
                    return baseline(tree, selection, args.timeout)
                finally:
                    free.put(tree)

            with ThreadPoolExecutor(max_workers=jobs) as pool:
                failures = [f for f in pool.map(unmutated, selections) if f]
            if failures:
                print("error: tests fail without any mutant:", *failures, sep="\n  ")
                return 1
            print(
                f"baseline: {len(selections)} test selection(s) pass unmutated "
                f"({(time.monotonic() - started) / 60:.1f} min)",
                flush=True,
            )

        def one(mutant: Mutant) -> Outcome:
            tree = free.get()
            try:
                return try_mutant(tree, mutant, args.timeout)
            finally:
                free.put(tree)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            try:
                for outcome in pool.map(one, mutants):
                    outcomes.append(outcome)
                    print(
                        f"{outcome.verdict:8} {outcome.mutant.id:40} {outcome.seconds:6.1f} s  "
                        f"{outcome.detail}",
                        flush=True,
                    )
            except KeyboardInterrupt:
                pool.shutdown(wait=False, cancel_futures=True)
                kill_running()
                raise
    print(report(outcomes, time.monotonic() - started))
    return 0 if all(o.verdict in ("killed", "timeout") for o in outcomes) else 1


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, interrupted)
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("error: interrupted; the working tree was not changed", file=sys.stderr)
        raise SystemExit(130) from None
