"""Helpers shared by the Python benchmarks: loopback ports, child processes, HTTP and /proc."""

import json
import os
import socket
import statistics
import subprocess
import time
import urllib.error
import urllib.request


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_average():
    """Return the 1-minute load average, for printing beside each figure."""
    with open("/proc/loadavg", encoding="ascii") as file:
        return float(file.read().split()[0])


def memory_kib(pid):
    """Read VmRSS and VmHWM of a process in KiB from /proc/PID/status."""
    values = memory_detail_kib(pid)
    return values.get("VmRSS", 0), values.get("VmHWM", 0)


def memory_detail_kib(pid):
    """Read VmRSS, VmHWM, RssAnon and RssFile (/proc/PID/status) and Pss (smaps_rollup), in KiB.

    RssFile counts mapped file pages such as shared libraries, which other processes share;
    Pss divides each shared page among the processes that map it.
    """
    values = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as file:
        for line in file:
            name, _, rest = line.partition(":")
            if name in ("VmRSS", "VmHWM", "RssAnon", "RssFile"):
                values[name] = int(rest.split()[0])
    try:
        with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as file:
            for line in file:
                name, _, rest = line.partition(":")
                if name == "Pss":
                    values["Pss"] = int(rest.split()[0])
    except OSError:
        values["Pss"] = 0
    return values


def request(method, url, body=None, token=None, headers=None, timeout=30):
    """Send one HTTP request and return (status, body bytes). Raise only when there is no reply."""
    data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
    all_headers = {"Content-Type": "application/json"}
    if token:
        all_headers["Authorization"] = f"Bearer {token}"
    all_headers.update(headers or {})
    req = urllib.request.Request(url, data=data, method=method, headers=all_headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def api(method, url, body=None, token=None):
    """Send a request that must succeed and return its decoded JSON reply."""
    status, reply = request(method, url, body, token)
    if status >= 300:
        raise RuntimeError(f"{method} {url} returned HTTP {status}: {reply[:300]!r}")
    return json.loads(reply) if reply else None


def wait_until(probe, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if probe():
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {seconds} s waiting for {what}")


def wait_ready(url, seconds=30):
    wait_until(lambda: request("GET", url, timeout=2)[0] == 200, seconds, url)


class Processes:
    """Child processes started by a benchmark, each ended by its own PID on exit."""

    def __init__(self):
        self.children = []

    def start(self, args, log_path, env=None):
        log = open(log_path, "wb")
        child = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT,
                                 env={**os.environ, **(env or {})})
        self.children.append(child)
        return child

    def stop(self, child):
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(timeout=20)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        for child in reversed(self.children):
            self.stop(child)


def percentile(samples, fraction):
    """Return the nearest-rank percentile of `samples` (fraction 0.99 for p99)."""
    ordered = sorted(samples)
    rank = max(1, int(-(-fraction * len(ordered) // 1)))
    return ordered[rank - 1]


def median(samples):
    return statistics.median(samples)


def alertmanager_binary():
    for name in ("prometheus-alertmanager", "alertmanager"):
        for folder in os.environ.get("PATH", "").split(":") + ["/usr/bin"]:
            path = os.path.join(folder, name)
            if os.access(path, os.X_OK):
                return path
    raise RuntimeError("Alertmanager is missing; run scripts/install-deps.sh")
