"""The local loop as a new user meets it (`make test-local-loop`, part of `make test`).

1. Runs the commands of README.md's "Run the functions locally" block as printed, each in a fresh
   `bash` whose PATH has no virtualenv on it: the lines of a terminal marked "(keeps running)" end
   with a server, started in the background; every other line must exit 0.
2. Runs the commands printed at the top of events/README.md.
3. For every row of the two event tables in events/README.md: runs the row's setup command (the
   "Setups" table), then `make invoke FUNCTION=<function> EVENT=events/<function>/<file>`, and checks
   the answer against the row's "Expected" cell. The tables are this test's input.
4. Restarts `make watch` with a broken configuration (`ALARM_NAMES=`) and checks that an invoke
   answers with the configuration error, quickly, twice in a row.

It uses the printed ports (emulator 5005, functions 9000) and fails, naming the port, if either is
taken. Everything listens on 127.0.0.1.

Every check prints one `  PASS ...` or `  FAIL ...` line (.ci/run counts them). Whatever stops the loop
early is a FAIL line too, counted in the closing summary: a port taken, a server that never listens,
`make seed-emulator` failing, an error of this script itself. Exit status 0 only if no check failed.
"""

import json
import os
import re
import subprocess
import sys
import time
import traceback
from typing import Any

# Run as `python tests/local_loop.py`: its folder, tests/, is on sys.path, and with it the bed's package.
from awsbed.process import Processes, listening, wait_listening

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EMULATOR_PORT, LAMBDA_PORT = 5005, 9000
# make watch builds both functions first; after `cargo test` that takes seconds, on a cold target
# directory minutes.
WATCH_START_TIMEOUT = 900
# A broken configuration must answer this fast (first invoke: `cargo run` finds the build fresh,
# the process starts and reports its init error).
CONFIG_ERROR_WITHIN = 2.0
# Before the sample events: the starting state of events/README.md's first rows.
SEED_COMMAND = "make seed-emulator WEIGHTS=100/0"

failures: list[str] = []


def check(ok: bool, what: str) -> None:
    """Prints the check's PASS or FAIL line; a failure is remembered for the summary."""
    print(f"  {'PASS' if ok else 'FAIL'} {what}", flush=True)
    if not ok:
        failures.append(what)


def fresh_env() -> dict[str, str]:
    """The environment of a new terminal: no virtualenv, no PYTHONPATH, no AWS settings or credentials."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if ".venv" not in p)
    for var in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS"):  # run as if typed, not as a sub-make of make test
        env.pop(var, None)
    return env


def run(command: str, timeout: float = 300) -> tuple[int, str, float]:
    """Runs one printed line in a fresh bash; (exit code, output, seconds)."""
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT,
        env=fresh_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return done.returncode, done.stdout + done.stderr, time.monotonic() - started


def start_server(servers: Processes, command: str, log_name: str) -> subprocess.Popen[bytes]:
    """Starts a printed server line in a fresh bash, in its own process group, its output in target/."""
    with open(os.path.join(ROOT, "target", log_name), "w") as log:
        return servers.spawn(["bash", "-c", command], cwd=ROOT, env=fresh_env(), stdout=log, stderr=subprocess.STDOUT)


def wait_for(port: int, seconds: float, proc: subprocess.Popen[bytes], log_name: str) -> bool:
    """Whether `port` listens within `seconds` (False at once if `proc` exits); if not, prints its log's tail."""
    if wait_listening(port, seconds, proc, interval=0.5):
        return True
    print(read(os.path.join("target", log_name))[-3000:])
    return False


def read(relative: str) -> str:
    """A file of the repository, by its path from the root."""
    with open(os.path.join(ROOT, relative)) as f:
        return f.read()


def sh_block(markdown: str, heading: str) -> str:
    """The first ```sh block after `heading`."""
    start = markdown.index(heading)
    block = re.search(r"```sh\n(.*?)```", markdown[start:], re.S)
    return block.group(1)


def terminals(block: str) -> list[tuple[bool, list[str]]]:
    """[(keeps_running, [commands])] per '# terminal' comment."""
    result = []
    for line in block.splitlines():
        line = line.strip()
        if line.startswith("# terminal"):
            result.append(("(keeps running)" in line, []))
        elif line and not line.startswith("#"):
            result[-1][1].append(line.split("  #")[0].strip())
    return result


def table(markdown: str, heading: str) -> list[dict[str, str]]:
    """Rows (dicts by header) of the first table after `heading`."""
    lines = markdown[markdown.index(heading) :].splitlines()
    rows, header = [], None
    for line in lines[0 if heading.startswith("|") else 1 :]:
        if line.startswith("## "):
            break
        if not line.startswith("|"):
            if header:
                break
            continue
        cells = [c.strip() for c in line.strip().strip("|").split(" | ")]
        if header is None:
            header = cells
        elif not set(line) <= set("|- "):
            rows.append(dict(zip(header, cells, strict=True)))
    return rows


def unquote(cell: str) -> str:
    """A table cell without its backquotes."""
    return cell.strip().strip("`")


def answer(output: str) -> tuple[Any, ...]:
    """('ok', response) or ('error', errorType, message) from cargo lambda invoke's output."""
    m = re.search(r"^Error: (\S+)\s*\n(.*?)(?:\n\s*Was this behavior unexpected|\Z)", output, re.S | re.M)
    if m:
        text = re.sub(r"^\s*[\u00d7\u2502]\s?", "", m.group(2), flags=re.M)  # the x and | of miette's frame
        return ("error", m.group(1), " ".join(text.split()))
    for line in reversed(output.splitlines()):
        if line.startswith("{"):
            return ("ok", json.loads(line))
    return ("none", output)


def matches(function: str, expected: str, got: tuple[Any, ...]) -> tuple[bool, Any]:
    """Whether `got` (from answer()) is what the Expected cell says; and a description."""
    if expected.startswith("error "):
        etype, _, text = expected[len("error ") :].partition(": ")
        ok = got[0] == "error" and got[1] == etype and got[2].startswith(text)
        return ok, got
    if got[0] != "ok":
        return False, got
    response = got[1]
    if function == "redis-reconciler":
        seen = ", ".join(f"{r['replication_group_id']} {r['action']}" for r in response["results"])
        return (seen or "no targets") == expected, seen or "no targets"
    action = response["action"]
    seen = action if action == "ignored" else f"{action} {response['blue_weight']}/{response['green_weight']}"
    return seen == expected, seen


def main() -> None:
    """Run every check (see the module docstring); exit 1 if any failed, whatever stopped the loop."""
    failures.clear()
    os.makedirs(os.path.join(ROOT, "target"), exist_ok=True)
    servers = Processes()
    try:
        loop(servers)
    except Exception as err:  # a crash of the loop is a failed check, counted like any other
        traceback.print_exc()
        check(False, f"the local loop stopped on an error: {err!r}")
    finally:
        servers.stop_all(grace=10)
    if failures:
        print(f"local loop: {len(failures)} check(s) failed")
        sys.exit(1)
    print("local loop: every check passed")


def loop(servers: Processes) -> None:
    """The checks, in order; returns early (after a FAIL line) when the rest could not mean anything."""
    taken = [port for port in (EMULATOR_PORT, LAMBDA_PORT) if listening(port)]
    for port in taken:
        check(False, f"127.0.0.1:{port} is taken; the printed commands use it: stop what listens there")
    if taken:
        return
    readme, events_readme = read("README.md"), read(os.path.join("events", "README.md"))
    print("== README.md, 'Run the functions locally', line by line in fresh shells")
    for keeps_running, commands in terminals(sh_block(readme, "## Run the functions locally")):
        for i, command in enumerate(commands):
            if keeps_running and i == len(commands) - 1:
                port = EMULATOR_PORT if "emulator" in command else LAMBDA_PORT
                log = f"local-loop-{port}.log"
                proc = start_server(servers, command, log)
                started = time.monotonic()
                up = wait_for(port, 60 if port == EMULATOR_PORT else WATCH_START_TIMEOUT, proc, log)
                check(up, f"{command}: listening on 127.0.0.1:{port} after {time.monotonic() - started:.1f} s")
                if not up:
                    return
            else:
                code, out, took = run(command)
                check(code == 0, f"{command}: exit {code} in {took:.2f} s")
                if code != 0:
                    print(out[-2000:])

    print("== events/README.md, the printed commands")
    code, out, took = run(SEED_COMMAND)
    check(code == 0, f"{SEED_COMMAND}: exit {code} in {took:.2f} s")
    if code != 0:
        print(out[-2000:])
        return
    for command in terminals("# terminal\n" + sh_block(events_readme, "# Sample Lambda events"))[0][1]:
        code, out, took = run(command)
        check(code == 0 and answer(out)[0] == "ok", f"{command}: exit {code} in {took:.2f} s")

    print("== events/README.md, every sample event under its stated setup")
    setups = {unquote(r["Setup"]): unquote(r["Made by"]) for r in table(events_readme, "| Setup | Starting state")}
    count = 0
    for function in ("redis-reconciler", "bluegreen-rollback"):
        rows = table(events_readme, f"## {function}")
        files = sorted(os.listdir(os.path.join(ROOT, "events", function)))
        check(
            sorted(unquote(r["File"]) for r in rows) == files,
            f"{function}: the table lists every file in events/{function}/ once",
        )
        for row in rows:
            file, setup, expected = unquote(row["File"]), unquote(row["Setup"]), unquote(row["Expected"])
            code, out, _ = run(setups[setup])
            if code != 0:
                check(False, f"setup {setup!r}: {setups[setup]} exited {code}: {out[-500:]}")
                continue
            code, out, took = run(f"make invoke FUNCTION={function} EVENT=events/{function}/{file}")
            ok, seen = matches(function, expected, answer(out))
            check(ok, f"{function} {file} [{setup}]: expected {expected!r}, got {seen!r} ({took:.2f} s)")
            count += 1
    print(f"  {count} sample events checked")

    print("== a broken configuration answers the invoke")
    for proc in list(servers.procs):
        if "watch" in proc.args[-1]:
            servers.stop(proc, grace=10)
    proc = start_server(servers, "make watch ALARM_NAMES=", "local-loop-broken.log")
    up = wait_for(LAMBDA_PORT, 120, proc, "local-loop-broken.log")
    check(up, "make watch ALARM_NAMES= is listening")
    if not up:
        return
    for attempt in ("first", "second"):
        code, out, took = run("make invoke FUNCTION=bluegreen-rollback", timeout=60)
        got = answer(out)
        if got[0] == "ok":  # cargo lambda watch 1.9.2 hands an init error back as the invoke's body
            got = ("error", got[1].get("errorType"), got[1].get("errorMessage", ""))
        check(
            got[0] == "error" and got[1] == "ConfigError" and got[2].startswith("ALARM_NAMES is not set"),
            f"{attempt} invoke: {got!r}",
        )
        check(
            took <= CONFIG_ERROR_WITHIN,
            f"{attempt} invoke answered in {took:.2f} s (at most {CONFIG_ERROR_WITHIN} s)",
        )


if __name__ == "__main__":
    main()
