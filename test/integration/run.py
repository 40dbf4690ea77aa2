#!/usr/bin/python3
"""Runs the TLS module's integration tests against a real Kamailio.

    /usr/bin/python3 test/integration/run.py [--module PATH] [-k SUBSTRING]

Each `test_*` function of the `test_*.py` files beside this script gets a
fresh harness.Case; after it returns, every Kamailio it started is stopped and
its log checked (see harness.Case.finish).
"""

import argparse
import glob
import importlib
import os
import shutil
import sys
import tempfile
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True      # no __pycache__ in the work tree

import harness  # noqa: E402

LOG_TAIL = 25   # lines of each server's log shown under a failed test


def discover():
    """(name, function) for every test, in file order then source order."""
    tests = []
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        module = importlib.import_module(os.path.basename(path)[:-3])
        for name, value in vars(module).items():
            if (name.startswith("test_") and callable(value)
                    and value.__module__ == module.__name__):
                tests.append((name, value))
    names = [name for name, _ in tests]
    duplicates = {name for name in names if names.count(name) > 1}
    if duplicates:
        sys.exit("duplicate test names: %s" % ", ".join(sorted(duplicates)))
    return tests


def describe(exc):
    """One line: the exception and where in a test file it was raised."""
    where = ""
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if os.path.basename(frame.filename).startswith("test_"):
            where = " (%s:%d)" % (os.path.basename(frame.filename), frame.lineno)
            break
    text = str(exc) or type(exc).__name__
    if not isinstance(exc, AssertionError):
        text = "%s: %s" % (type(exc).__name__, text)
    return text + where


def run_one(session, function):
    """Returns None on success, else (reason, excerpt lines)."""
    case = harness.Case(session)
    reason = None
    try:
        function(case)
    except Exception as exc:
        reason = describe(exc)
    finally:
        problems = case.finish()

    excerpt = []
    for problem, lines in problems:
        excerpt.append(problem + ":" if lines else problem)
        excerpt += ["  " + line for line in lines]
    if reason is None and not problems:
        return None
    if reason is None:
        reason = problems[0][0]
    else:
        for server in case.servers:
            excerpt.append("last lines of %s:" % server.log_path)
            excerpt += ["  " + line for line in server.log_lines[-LOG_TAIL:]]
    return reason, excerpt


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--module", default=os.path.join(REPO, "tls.so"),
                        help="the tls.so to test (default: <repo>/tls.so)")
    parser.add_argument("-k", dest="substring", default="",
                        help="run only tests whose name contains SUBSTRING")
    args = parser.parse_args()

    module = os.path.abspath(args.module)
    if not os.path.isfile(module):
        sys.exit("no module at %s" % module)

    run_dir = tempfile.mkdtemp(prefix="kamailio-tls-it-")
    session = harness.Session(module, run_dir)
    passed = failed = 0
    for name, function in discover():
        if args.substring not in name:
            continue
        outcome = run_one(session, function)
        if outcome is None:
            passed += 1
            print("PASS", name, flush=True)
        else:
            failed += 1
            reason, excerpt = outcome
            print("FAIL %s: %s" % (name, reason))
            for line in excerpt:
                print("    " + line)
            sys.stdout.flush()

    if failed:
        print("logs and certificates kept in %s" % run_dir)
    else:
        shutil.rmtree(run_dir, ignore_errors=True)
    print("%d passed, %d failed" % (passed, failed))
    return 0 if passed and not failed else 1


if __name__ == "__main__":
    sys.exit(main())
