#!/usr/bin/env python3
"""Firing alert to provider call under the automatic policy, against the 1 s limit.

Starts a real `backout serve` (SQLite in a temporary folder, 2 job workers) with services under
the automatic policy, each rolled back by a `command` provider whose scripts append a timestamp
to a log at every call. For each service in turn it records a verified change v1 and a change v2,
posts one Alertmanager webhook (payload version 4) with a critical alert for the service, and
measures from just before the POST to the provider's first call (the `status` script that the
automatic assessment runs) and to the rollback call (the `run` script). Each service is used once
because the policy acts at most once per change and freezes the service after a rollback.

Usage: bench/policy_latency.py [--build-dir build] [--runs 60] [--pause 0.3]
"""

import argparse
import datetime
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

TOKEN = "policy-latency-bench-token"
LIMIT_SECONDS = 1.0
WARMUP = 2


def iso(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_scripts(folder):
    calls = os.path.join(folder, "calls.log")
    versions = os.path.join(folder, "versions")
    os.makedirs(versions)
    # Each call appends "<script> <service> <unix time with nanoseconds>" before doing its work.
    status = (f"#!/bin/sh\necho \"status $BACKOUT_SERVICE $(date +%s.%N)\" >> '{calls}'\n"
              f"cat '{versions}/'\"$BACKOUT_SERVICE\" 2>/dev/null || echo v2\n")
    rollback = (f"#!/bin/sh\necho \"run $BACKOUT_SERVICE $(date +%s.%N)\" >> '{calls}'\n"
                f"printf '%s\\n' \"$BACKOUT_TARGET_VERSION\" > '{versions}/'\"$BACKOUT_SERVICE\"\n")
    for name, text in (("status.sh", status), ("rollback.sh", rollback)):
        path = os.path.join(folder, name)
        with open(path, "w", encoding="ascii") as file:
            file.write(text)
        os.chmod(path, 0o755)
    return calls


def write_config(folder, port, services):
    lines = [
        f"listen: 127.0.0.1:{port}",
        f"data_dir: {folder}/data",
        "users:",
        "  - {name: ci-1, roles: [ci]}",
        "signals:",
        "  alertmanager:",
        "    bearer_token: env:BACKOUT_BENCH_AM_TOKEN",
        "services:",
    ]
    for name in services:
        lines += [
            f"  - name: {name}",
            "    provider:",
            "      kind: command",
            f"      run: ['{folder}/rollback.sh']",
            f"      status: ['{folder}/status.sh']",
            "      timeout: 60s",
            "    detection:",
            "      watch_window: 30m",
            "      automatic_rollback: {enabled: true, severities: [critical]}",
        ]
    path = os.path.join(folder, "backout.yaml")
    with open(path, "w", encoding="ascii") as file:
        file.write("\n".join(lines) + "\n")
    return path


def webhook(service, index, starts_at):
    alert = {
        "status": "firing",
        "labels": {"alertname": "ErrorRatioHigh", "service": service, "severity": "critical"},
        "annotations": {"summary": "error ratio above 20 %"},
        "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph",
        "fingerprint": f"{index:016x}",
    }
    return json.dumps({
        "version": "4",
        "groupKey": f'{{}}:{{alertname="ErrorRatioHigh", service="{service}"}}',
        "truncatedAlerts": 0,
        "status": "firing",
        "receiver": "backout",
        "groupLabels": {"alertname": "ErrorRatioHigh", "service": service},
        "commonLabels": alert["labels"],
        "commonAnnotations": alert["annotations"],
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [alert],
    }).encode()


def calls_of(calls_path, service, since):
    """Return the time of each script's first call for `service` at or after `since`."""
    found = {}
    if not os.path.exists(calls_path):
        return found
    with open(calls_path, encoding="ascii") as file:
        for line in file:
            parts = line.split()
            if len(parts) != 3 or parts[1] != service or parts[0] in found:
                continue
            if float(parts[2]) >= since:
                found[parts[0]] = float(parts[2])
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default="build")
    parser.add_argument("--runs", type=int, default=60, help="alerts measured (default 60)")
    parser.add_argument("--pause", type=float, default=0.3,
                        help="seconds between a rollback call and the next alert (default 0.3)")
    args = parser.parse_args()
    backout = os.path.abspath(os.path.join(args.build_dir, "backout"))

    services = [f"svc-{i}" for i in range(1, args.runs + WARMUP + 1)]
    with tempfile.TemporaryDirectory(prefix="backout-policy-bench-") as folder, \
            benchlib.Processes() as processes:
        calls_path = write_scripts(folder)
        port = benchlib.free_port()
        base = f"http://127.0.0.1:{port}"
        config = write_config(folder, port, services)
        processes.start([backout, "serve", "--config", config], os.path.join(folder, "server.log"),
                        env={"BACKOUT_BENCH_AM_TOKEN": TOKEN})
        benchlib.wait_ready(base + "/readyz")
        with open(os.path.join(folder, "data", "admin.token"), encoding="ascii") as file:
            admin = file.read().strip()
        ci = benchlib.api("POST", base + "/api/v1/users", {"name": "ci-1", "roles": ["ci"]},
                          admin)["token"]

        # Every service gets a verified good change v1 and the bad change v2 before any alert.
        now = datetime.datetime.now(datetime.timezone.utc)
        for service in services:
            good = benchlib.api("POST", base + "/api/v1/changes",
                                {"service": service, "version": "v1", "previous_version": "v0",
                                 "time": iso(now - datetime.timedelta(minutes=20))}, ci)
            benchlib.api("POST", base + f"/api/v1/changes/{good['id']}/verify", {"passed": True},
                         ci)
            benchlib.api("POST", base + "/api/v1/changes",
                         {"service": service, "version": "v2", "previous_version": "v1",
                          "time": iso(now - datetime.timedelta(seconds=1))}, ci)

        first_call, run_call, loads = [], [], []
        for index, service in enumerate(services):
            starts_at = iso(datetime.datetime.now(datetime.timezone.utc))
            body = webhook(service, index, starts_at)
            sent = time.time()
            status, reply = benchlib.request("POST", base + "/api/v1/signals/alertmanager", body,
                                             TOKEN)
            if status != 200:
                raise RuntimeError(f"webhook for {service} returned HTTP {status}: {reply!r}")
            benchlib.wait_until(lambda: "run" in calls_of(calls_path, service, sent), 30,
                                f"the rollback call for {service}")
            found = calls_of(calls_path, service, sent)
            if index >= WARMUP:
                first_call.append(min(found.values()) - sent)
                run_call.append(found["run"] - sent)
                loads.append(benchlib.load_average())
            time.sleep(args.pause)

    def line(name, samples):
        med, p99 = benchlib.median(samples), benchlib.percentile(samples, 0.99)
        print(f"  {name:<44} median {med * 1000:7.1f} ms  p99 {p99 * 1000:7.1f} ms  "
              f"max {max(samples) * 1000:7.1f} ms  p99/limit {p99 / LIMIT_SECONDS:5.2f}  "
              f"{'ok' if p99 < LIMIT_SECONDS else 'MISSED'}")

    print(f"firing alert -> provider call, automatic policy, {len(run_call)} alerts "
          f"(limit {LIMIT_SECONDS:.0f} s; load average {min(loads):.1f} to {max(loads):.1f}):")
    line("webhook POST -> provider's first call (status)", first_call)
    line("webhook POST -> rollback call (run)", run_call)


if __name__ == "__main__":
    main()
