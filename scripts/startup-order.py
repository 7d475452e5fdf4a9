#!/usr/bin/env python3
"""Write cmake/serve-startup.order from a callgrind run of `backout serve`.

The file lists, one mangled symbol a line, the functions of the `backout` binary that the server
runs from its start until it is ready and then idle for a few seconds. The link of `backout`
places them first (cmake/StartupOrder.cmake), so the pages that an idle server keeps resident
hold code it ran rather than its neighbours. Rerun this after large changes to start-up code:
a function missing from the file is only placed elsewhere, never lost.

Usage: scripts/startup-order.py [BUILD_DIR]   (needs valgrind; binds 127.0.0.1 only)
       scripts/startup-order.py --check BUILD_DIR
           exits 1 when fewer than 80 % of the file's names are functions of BUILD_DIR/backout,
           the sign that start-up code was renamed or moved since the file was written
"""
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORDER_FILE = os.path.join(ROOT, "cmake", "serve-startup.order")


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_ready(url, process, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"backout serve exited with status {process.returncode} before it was ready")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except OSError:
            time.sleep(0.5)
    sys.exit(f"backout serve was not ready at {url} after {seconds} s")


def executed_functions(callgrind_file, binary):
    """Returns the functions of `binary` that the callgrind profile saw run, in profile order."""
    object_names, function_names = {}, {}
    current_object = None
    functions = []
    seen = set()
    pattern = re.compile(r"^(ob|fn|cob|cfn)=\((\d+)\)(?: (.*))?$")
    with open(callgrind_file, encoding="utf-8", errors="replace") as profile:
        for line in profile:
            match = pattern.match(line.rstrip("\n"))
            if not match:
                continue
            kind, index, name = match.groups()
            table = object_names if kind.endswith("ob") else function_names
            if name:
                table[index] = name
            if kind == "ob":
                current_object = object_names.get(index)
            elif kind == "fn" and current_object == binary:
                function = function_names[index]
                if function not in seen:
                    seen.add(function)
                    functions.append(function)
    return functions


def defined_symbols(binary):
    listing = subprocess.run(["nm", "--defined-only", binary], capture_output=True, text=True,
                             check=True).stdout
    return {fields[2] for fields in (line.split() for line in listing.splitlines())
            if len(fields) == 3 and fields[1] in "tTwW"}


def check(binary):
    with open(ORDER_FILE, encoding="ascii") as file:
        listed = [line.strip() for line in file if line.strip()]
    symbols = defined_symbols(binary)
    found = sum(1 for name in listed if name in symbols)
    print(f"{found} of the {len(listed)} functions in {ORDER_FILE} are defined in {binary}")
    if found < 0.8 * len(listed):
        sys.exit("the start-up order is out of date: run scripts/startup-order.py BUILD_DIR "
                 "and commit cmake/serve-startup.order")


def main():
    arguments = sys.argv[1:]
    if arguments and arguments[0] == "--check":
        if len(arguments) != 2:
            sys.exit("usage: scripts/startup-order.py --check BUILD_DIR")
        check(os.path.realpath(os.path.join(arguments[1], "backout")))
        return
    build_dir = arguments[0] if arguments else "build"
    binary = os.path.realpath(os.path.join(build_dir, "backout"))
    with tempfile.TemporaryDirectory(prefix="backout-startup-order-") as folder:
        port = free_port()
        config = os.path.join(folder, "backout.yaml")
        with open(config, "w", encoding="ascii") as file:
            file.write(f"listen: 127.0.0.1:{port}\ndata_dir: {folder}/data\n"
                       "signals:\n  alertmanager:\n    bearer_token: env:BACKOUT_ORDER_TOKEN\n"
                       "services:\n  - name: checkout\n"
                       "    provider: {kind: command, run: ['/bin/true']}\n")
        profile = os.path.join(folder, "callgrind.out")
        with open(os.path.join(folder, "server.log"), "w", encoding="utf-8") as log:
            server = subprocess.Popen(
                ["valgrind", "--tool=callgrind", "--demangle=no",
                 f"--callgrind-out-file={profile}", binary, "serve", "--config", config],
                env=dict(os.environ, BACKOUT_ORDER_TOKEN="startup-order-token"),
                stdout=subprocess.DEVNULL, stderr=log)
            try:
                wait_ready(f"http://127.0.0.1:{port}/readyz", server, 300)
                time.sleep(5)  # lets the job poller, checkpoint signer and detection loop run
            finally:
                server.send_signal(signal.SIGINT)
                server.wait(timeout=300)
        symbols = defined_symbols(binary)
        functions = [name for name in executed_functions(profile, binary) if name in symbols]
    with open(ORDER_FILE, "w", encoding="ascii") as file:
        file.write("\n".join(functions) + "\n")
    print(f"wrote {len(functions)} functions to {ORDER_FILE}")


if __name__ == "__main__":
    main()
