#!/usr/bin/env python3
"""Resident memory of `backout serve` and Alertmanager, idle and under the same alert load.

Starts a real `backout serve` (SQLite in a temporary folder, default 2 job workers, one service)
and a real Alertmanager (the Debian package, a receiver that sends nothing, no cluster). Reads
VmRSS of both when idle, then sends the same alerts to both from the same number of client
threads: Alertmanager webhook bodies (payload version 4) to Backout's receiver and the same
alerts to Alertmanager's POST /api/v2/alerts. VmRSS is sampled every 20 ms during the load;
VmHWM (the peak resident size of the process's life) and VmRSS are read again after a settle
time. The idle target is Backout < 0.5 x Alertmanager.

Usage: bench/memory_bench.py [--build-dir build] [--requests 400] [--alerts-per-request 50]
                             [--clients 4] [--settle 5]
"""

import argparse
import datetime
import json
import os
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

TOKEN = "memory-bench-token"


def labels(request, alert):
    return {"alertname": "MemoryBench", "service": "checkout", "severity": "warning",
            "instance": f"10.0.{request}.{alert}"}


def webhook_body(request, count, starts_at):
    alerts = [{"status": "firing", "labels": labels(request, i),
               "annotations": {"summary": "bench"}, "startsAt": starts_at,
               "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://127.0.0.1:9090/graph",
               "fingerprint": f"{request:08x}{i:08x}"} for i in range(count)]
    return json.dumps({"version": "4",
                       "groupKey": f'{{}}:{{alertname="MemoryBench", n="{request}"}}',
                       "truncatedAlerts": 0, "status": "firing", "receiver": "backout",
                       "groupLabels": {"alertname": "MemoryBench"},
                       "commonLabels": {"alertname": "MemoryBench"}, "commonAnnotations": {},
                       "externalURL": "http://127.0.0.1:9093", "alerts": alerts}).encode()


def postable_alerts(request, count, starts_at):
    return json.dumps([{"labels": labels(request, i), "annotations": {"summary": "bench"},
                        "startsAt": starts_at,
                        "generatorURL": "http://127.0.0.1:9090/graph"}
                       for i in range(count)]).encode()


class Sampler:
    """Sample a process's VmRSS every 20 ms in a thread and keep the largest value."""

    def __init__(self, pid):
        self.pid = pid
        self.peak = 0
        self.running = True
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while self.running:
            self.peak = max(self.peak, benchlib.memory_kib(self.pid)[0])
            time.sleep(0.02)

    def stop(self):
        self.running = False
        self.thread.join()
        return self.peak


def send(url, bodies, clients, token):
    """Post every body from `clients` threads and return the seconds taken."""
    next_index = iter(range(len(bodies)))
    lock = threading.Lock()
    failures = []

    def client():
        while True:
            with lock:
                index = next(next_index, None)
            if index is None:
                return
            status, reply = benchlib.request("POST", url, bodies[index], token, timeout=120)
            if status != 200:
                failures.append(f"HTTP {status}: {reply[:200]!r}")
                return

    start = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise RuntimeError(f"POST {url} failed: {failures[0]}")
    return time.monotonic() - start


def measure(pid, url, bodies, clients, token, settle):
    idle = benchlib.memory_detail_kib(pid)
    sampler = Sampler(pid)
    seconds = send(url, bodies, clients, token)
    peak = sampler.stop()
    time.sleep(settle)
    after = benchlib.memory_detail_kib(pid)
    return {"idle": idle["VmRSS"], "idle_anon": idle["RssAnon"], "idle_file": idle["RssFile"],
            "idle_pss": idle["Pss"], "peak": max(peak, after["VmRSS"]), "after": after["VmRSS"],
            "after_anon": after["RssAnon"], "hwm": after["VmHWM"], "seconds": seconds,
            "load": benchlib.load_average()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default="build")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--alerts-per-request", type=int, default=50)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--settle", type=float, default=5.0,
                        help="seconds after the load before the last reading (default 5)")
    args = parser.parse_args()
    backout = os.path.abspath(os.path.join(args.build_dir, "backout"))
    starts_at = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    alerts = args.requests * args.alerts_per_request

    with tempfile.TemporaryDirectory(prefix="backout-memory-bench-") as folder, \
            benchlib.Processes() as processes:
        port = benchlib.free_port()
        with open(os.path.join(folder, "backout.yaml"), "w", encoding="ascii") as file:
            file.write(f"listen: 127.0.0.1:{port}\ndata_dir: {folder}/data\n"
                       "signals:\n  alertmanager:\n    bearer_token: env:BACKOUT_BENCH_TOKEN\n"
                       "services:\n  - name: checkout\n"
                       "    provider: {kind: command, run: ['/bin/true']}\n")
        server = processes.start([backout, "serve", "--config", f"{folder}/backout.yaml"],
                                 os.path.join(folder, "server.log"),
                                 env={"BACKOUT_BENCH_TOKEN": TOKEN})
        benchlib.wait_ready(f"http://127.0.0.1:{port}/readyz")

        am_port = benchlib.free_port()
        os.makedirs(os.path.join(folder, "alertmanager"))
        with open(os.path.join(folder, "alertmanager.yml"), "w", encoding="ascii") as file:
            file.write("route:\n  receiver: none\nreceivers:\n  - name: none\n")
        alertmanager = processes.start(
            [benchlib.alertmanager_binary(), f"--config.file={folder}/alertmanager.yml",
             f"--storage.path={folder}/alertmanager", f"--web.listen-address=127.0.0.1:{am_port}",
             "--cluster.listen-address="],
            os.path.join(folder, "alertmanager.log"))
        benchlib.wait_ready(f"http://127.0.0.1:{am_port}/-/ready")
        time.sleep(args.settle)  # both idle for the same time before the first reading

        webhooks = [webhook_body(r, args.alerts_per_request, starts_at)
                    for r in range(args.requests)]
        postable = [postable_alerts(r, args.alerts_per_request, starts_at)
                    for r in range(args.requests)]
        ours = measure(server.pid, f"http://127.0.0.1:{port}/api/v1/signals/alertmanager",
                       webhooks, args.clients, TOKEN, args.settle)
        peer = measure(alertmanager.pid, f"http://127.0.0.1:{am_port}/api/v2/alerts", postable,
                       args.clients, None, args.settle)

    print(f"resident memory, {args.requests} requests x {args.alerts_per_request} alerts "
          f"({alerts} alerts), {args.clients} clients (load average {ours['load']:.1f} and "
          f"{peer['load']:.1f}):")
    print(f"  {'':<46} {'backout':>10} {'alertmanager':>13} {'ratio':>6}")
    rows = [("idle VmRSS (MiB)", "idle", 0.5),
            ("  of which RssAnon (heap, stacks)", "idle_anon", None),
            ("  of which RssFile (binary, shared libraries)", "idle_file", None),
            ("idle Pss (shared pages divided)", "idle_pss", None),
            ("VmRSS peak under load, sampled (MiB)", "peak", None),
            (f"VmRSS {args.settle:.0f} s after the load (MiB)", "after", None),
            (f"RssAnon {args.settle:.0f} s after the load (MiB)", "after_anon", None),
            ("VmHWM after the load (MiB)", "hwm", None)]
    for name, key, target in rows:
        ratio = ours[key] / peer[key] if peer[key] else 0
        verdict = ""
        if target is not None:
            verdict = f"(target < {target}) {'ok' if ratio < target else 'MISSED'}"
        print(f"  {name:<46} {ours[key] / 1024:10.1f} {peer[key] / 1024:13.1f} {ratio:6.2f}  "
              f"{verdict}")
    print(f"  {'load duration (s)':<46} {ours['seconds']:10.2f} {peer['seconds']:13.2f}")


if __name__ == "__main__":
    main()
