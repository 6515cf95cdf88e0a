#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Judge a guest console log from its TAP lines, never from exit codes.

usage: verdict.py CONSOLE [--pristine FILE] [--record FILE]

Sections framed by "@@@ BEGIN name" / "@@@ END name rc=N":
  ours      run_kselftest.sh output: nested "# ok N name" lines per test
  coexist   upstream hmm-tests against lib/test_hmm
  peer      upstream hmm-tests against hmm_dummy
Every test that passed on the pristine base must pass in coexist, and
the others end as they did there; the
tests of pipeline/peer-required.txt must end in peer as listed there (and
the others skip). Any kernel
splat anywhere in the console fails the run. The last line printed is
"N passed, N failed, N skipped".
"""
import os
import re
import sys

SPLATS = re.compile(
    r"WARNING:|BUG:|Oops|kernel BUG|Kernel panic|general protection fault|"
    r"possible recursive locking|possible circular locking|"
    r"inconsistent lock state|suspicious RCU usage|"
    r"sleeping function called from invalid context|unreferenced object|"
    r"memory leaks|blocked for more than|Call Trace:|UBSAN:")
RESULT = re.compile(r"^(not ok|ok) \d+ (.*?)(?: # (SKIP|TIMEOUT|XFAIL|\S+)\b.*)?$")
HERE = os.path.dirname(os.path.abspath(__file__))


def sections(lines):
    found, name, body = {}, None, []
    for line in lines:
        m = re.match(r"^@@@ (BEGIN|END) (\S+)", line)
        if m and m.group(1) == "BEGIN":
            name, body = m.group(2), []
        elif m and name:
            found[name] = body
            name = None
        elif name:
            body.append(line)
    return found


def tap_results(lines, prefix=""):
    """{name: "ok" | "fail" | "skip"} from the TAP lines at one nesting."""
    out = {}
    for line in lines:
        if not line.startswith(prefix):
            continue
        m = RESULT.match(line[len(prefix):])
        if not m:
            continue
        status = "ok" if m.group(1) == "ok" else "fail"
        if m.group(3) == "SKIP":
            status = "skip"
        elif m.group(3) == "TIMEOUT":
            status = "fail"
        out[m.group(2).strip()] = status
    return out


def check_plan(label, lines, results, problems):
    """A suite that died part way has fewer results than its TAP plan."""
    plan = next((int(m.group(1)) for l in lines if (m := re.match(r"^1\.\.(\d+)", l))), None)
    if plan is None or plan != len(results):
        problems.append(f"{label}: plan {plan} but {len(results)} results")


def judge_ours(body, problems):
    """Count the tests of every program; a program without results counts once."""
    counts = {"ok": 0, "fail": 0, "skip": 0}
    programs = tap_results(body)
    plan = next((int(m.group(1)) for l in body
                 if (m := re.match(r"^1\.\.(\d+)", l))), None)
    if plan is None or plan != len(programs):
        problems.append(f"ours: plan {plan} but {len(programs)} program results")
    current, inner = None, {}
    for line in body:
        m = re.match(r"^# selftests: \S+: (\S+)", line)
        if m:
            current = m.group(1)
            inner[current] = []
        elif current and line.startswith("# "):
            inner[current].append(line[2:])
    for prog_line, status in programs.items():
        prog = prog_line.split(":")[-1].strip()
        cases = tap_results(inner.get(prog, []))
        for name, st in cases.items():
            counts[st] += 1
            if st == "fail":
                problems.append(f"ours: {prog}: {name} failed")
        if status == "fail" and not any(s == "fail" for s in cases.values()):
            counts["fail"] += 1
            problems.append(f"ours: {prog_line} failed ({len(cases)} results)")
        if not cases and status != "fail":
            counts[status] += 1
    if not programs:
        problems.append("ours: no test ran")
    return counts


def load_list(path):
    if not os.path.exists(path):
        return {}
    out = {}
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if line:
            status, _, name = line.partition(" ")
            if name.strip() in out:
                sys.exit(f"{path}: {name.strip()} is listed twice")
            out[name.strip()] = status
    return out


def gate(label, results, required, counts, problems):
    for name in sorted(required):
        st = results.get(name, "missing")
        if st == "ok":
            counts["ok"] += 1
        else:
            counts["fail"] += 1
            problems.append(f"{label}: {name} is {st}, must pass")


def gate_exact(label, results, listed, counts, problems):
    """Every test ends as listed ("ok" or an expected "fail"); unlisted
    ones may only skip. An expected failure counts as skipped."""
    for name in sorted(set(listed) | set(results)):
        want, got = listed.get(name, "skip"), results.get(name, "missing")
        if got != want:
            counts["fail"] += 1
            problems.append(f"{label}: {name} is {got}, listed as {want}")
        elif want == "ok":
            counts["ok"] += 1
        elif want == "fail":
            counts["skip"] += 1


def summary(results):
    c = {s: sum(1 for v in results.values() if v == s) for s in ("ok", "fail", "skip")}
    return f"{c['ok']} passed, {c['fail']} failed, {c['skip']} skipped"


def main():
    args = sys.argv[1:]
    console = args[0]
    pristine = args[args.index("--pristine") + 1] if "--pristine" in args else None
    record = args[args.index("--record") + 1] if "--record" in args else None
    lines = open(console, errors="replace").read().splitlines()
    secs = sections(lines)
    problems = []
    counts = {"ok": 0, "fail": 0, "skip": 0}

    if not any(l.startswith("@@@ GUEST DONE") for l in lines):
        problems.append("the guest did not finish (timeout or crash)")
    splats = [l for l in lines if SPLATS.search(l)]
    for l in splats[:20]:
        problems.append(f"splat: {l.strip()}")

    if record:
        results = tap_results(secs.get("coexist", []))
        if not results:
            sys.exit("no coexist results to record")
        with open(record, "w") as f:
            f.write(f"# upstream hmm-tests on the pristine base, {lines_kernel(lines)}\n")
            for name in sorted(results):
                f.write(f"{results[name]} {name}\n")
        print(f"recorded {record}: {summary(results)}")
        sys.exit(1 if problems else 0)

    if "ours" in secs:
        ours = judge_ours(secs["ours"], problems)
        print(f"ours: {ours['ok']} passed, {ours['fail']} failed, {ours['skip']} skipped")
        for k in counts:
            counts[k] += ours[k]
    else:
        problems.append("ours: section missing")

    coexist = tap_results(secs.get("coexist", []))
    print(f"coexist: {summary(coexist)}")
    check_plan("coexist", secs.get("coexist", []), coexist, problems)
    if pristine:
        recorded = load_list(pristine)
        must = [n for n, s in recorded.items() if s == "ok"]
        gate("coexist", coexist, must, counts, problems)
        # Identical to the pristine base: the skips and failures too.
        for name in sorted(set(recorded) | set(coexist)):
            was, now = recorded.get(name, "missing"), coexist.get(name, "missing")
            if was != "ok" and was != now:
                problems.append(f"coexist: {name} is {now}, {was} on the pristine base")

    peer = tap_results(secs.get("peer", []))
    print(f"peer: {summary(peer)}")
    check_plan("peer", secs.get("peer", []), peer, problems)
    gate_exact("peer", peer, load_list(os.path.join(HERE, "peer-required.txt")), counts,
               problems)

    counts["ok" if not splats else "fail"] += 1   # the console itself
    for p in problems:
        print(f"FAIL {p}")
    print(f"{counts['ok']} passed, {counts['fail']} failed, {counts['skip']} skipped")
    sys.exit(1 if problems else 0)


def lines_kernel(lines):
    for l in lines:
        m = re.match(r"^@@@ GUEST START .*kernel=(\S+)", l)
        if m:
            return m.group(1)
    return "unknown kernel"


if __name__ == "__main__":
    main()
