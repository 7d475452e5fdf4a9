#!/usr/bin/env python3
"""The demo's detect-to-recovered time, split into its parts.

Runs scripts/demo.sh (real shop, Prometheus, Alertmanager and `backout serve`, all on loopback,
in a temporary folder), then starts `backout serve` again on the demo's database and reads the
incident, its signal and the bad change through the API. Each part of the time from the bad
deploy to the validated recovery comes from those stored timestamps; the configured intervals
(Prometheus scrape and rule evaluation intervals, the rule's `for:`, Alertmanager's group_wait)
are read from the configs the demo wrote. Prints the table, with Backout's own share.

Usage: bench/demo_breakdown.py [--build-dir build] [--keep]
"""

import argparse
import datetime
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import benchlib  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def parse_time(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc)


def free_port_block(count):
    """Find a base port with `count` consecutive free loopback ports from it."""
    for _ in range(50):
        base = benchlib.free_port()
        if base + count > 65535:
            continue
        try:
            for offset in range(count):
                with socket.socket() as sock:
                    sock.bind(("127.0.0.1", base + offset))
            return base
        except OSError:
            continue
    raise RuntimeError(f"no {count} consecutive free loopback ports found")


def seconds_setting(text, key):
    """Read a duration such as `scrape_interval: 1s` from a config file's text, in seconds."""
    match = re.search(rf"{key}:\s*([0-9.]+)(ms|s|m)", text)
    if not match:
        return None
    value, unit = float(match.group(1)), match.group(2)
    return value * {"ms": 0.001, "s": 1, "m": 60}[unit]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--build-dir", default="build")
    parser.add_argument("--keep", action="store_true", help="keep the demo's folder")
    args = parser.parse_args()
    build_dir = os.path.abspath(args.build_dir)

    folder = tempfile.mkdtemp(prefix="backout-demo-bench-")
    demo = os.path.join(folder, "demo")
    port = free_port_block(4)
    env = {**os.environ, "BACKOUT_DEMO_DIR": demo, "BACKOUT_DEMO_PORT": str(port)}
    started = time.monotonic()
    run = subprocess.run(["bash", os.path.join(ROOT, "scripts", "demo.sh"), build_dir, "--exit"],
                         env=env, capture_output=True, text=True, check=False)
    demo_seconds = time.monotonic() - started
    with open(os.path.join(folder, "demo.out"), "w", encoding="utf-8") as file:
        file.write(run.stdout + run.stderr)
    if run.returncode != 0:
        sys.stderr.write(run.stdout[-3000:] + run.stderr[-3000:])
        raise SystemExit(f"demo_breakdown: scripts/demo.sh failed with status {run.returncode}; "
                         f"its output is in {folder}/demo.out")

    with open(os.path.join(demo, "prometheus", "prometheus.yml"), encoding="utf-8") as file:
        prometheus = file.read()
    with open(os.path.join(demo, "prometheus", "rules.yml"), encoding="utf-8") as file:
        rules = file.read()
    with open(os.path.join(demo, "alertmanager", "alertmanager.yml"), encoding="utf-8") as file:
        alertmanager = file.read()
    with open(os.path.join(demo, "backout.yaml"), encoding="utf-8") as file:
        backout_config = file.read()
    scrape = seconds_setting(prometheus, "scrape_interval")
    evaluation = seconds_setting(prometheus, "evaluation_interval")
    hold = seconds_setting(rules, "for")
    group_wait = seconds_setting(alertmanager, "group_wait")
    check_for = seconds_setting(backout_config, "        for")
    rate_window = re.search(r"rate\(sample_errors_total\[([0-9]+)s\]", backout_config)

    # Read the stored incident back through the API of a server on the demo's database.
    base = f"http://127.0.0.1:{port}"
    with open(os.path.join(demo, "tokens", "lead-1"), encoding="ascii") as file:
        lead = file.read().strip()
    with benchlib.Processes() as processes:
        processes.start([os.path.join(build_dir, "backout"), "serve", "--config",
                         os.path.join(demo, "backout.yaml")],
                        os.path.join(folder, "reread-server.log"))
        benchlib.wait_ready(base + "/readyz")
        incidents = benchlib.api("GET", base + "/api/v1/incidents", token=lead)["items"]
        incident = benchlib.api("GET", base + f"/api/v1/incidents/{incidents[0]['id']}",
                                token=lead)
        signals = benchlib.api("GET", base + "/api/v1/signals?limit=1000", token=lead)["items"]
        change = benchlib.api("GET", base + f"/api/v1/changes/{incident['suspected_change_id']}",
                              token=lead)

    signal = min((s for s in signals if s.get("incident_id") == incident["id"]),
                 key=lambda s: s["received_at"])
    rollback = incident["rollbacks"][0]
    validation = incident["validations"][-1]
    deployed = parse_time(change["time"])
    active = parse_time(signal["starts_at"])  # when the alert began firing
    received = parse_time(signal["received_at"])
    opened = parse_time(incident["opened_at"])
    requested = parse_time(rollback["requested_at"])
    rollback_started = parse_time(rollback["started_at"])
    rollback_finished = parse_time(rollback["finished_at"])
    validation_started = parse_time(validation["started_at"])
    validation_finished = parse_time(validation["finished_at"])

    def span(later, earlier):
        return (later - earlier).total_seconds()

    # Prometheus sends an alert's startsAt as the time it began firing, after `for:` held.
    rows = [
        ("v2 live -> alert firing (scrape, rate window, rule evaluation, `for:`)",
         span(active, deployed),
         f"scrape {scrape:g} s, evaluation {evaluation:g} s, for {hold:g} s", "monitoring"),
        ("alert firing -> webhook received (Alertmanager group_wait, send)",
         span(received, active), f"group_wait {group_wait:g} s", "monitoring"),
        ("webhook received -> incident opened (correlation job)", span(opened, received),
         "job poll 250 ms", "backout"),
        ("incident opened -> rollback requested (scripted CLI: assess, decide, rollback)",
         span(requested, opened), "", "operator"),
        ("rollback requested -> rollback job started", span(rollback_started, requested),
         "job poll 250 ms", "backout"),
        ("rollback job: plan check, provider call, readiness, read-back",
         span(rollback_finished, rollback_started), "", "provider"),
        ("rollback finished -> validation started (scripted CLI: validate)",
         span(validation_started, rollback_finished), "", "operator"),
        ("validation window (error ratio below 5 % held, smoke test)",
         span(validation_finished, validation_started),
         f"for {check_for:g} s, rate window {rate_window.group(1) if rate_window else '?'} s",
         "validation"),
    ]
    total = span(validation_finished, deployed)
    print(f"demo detect-to-recovered, {incident['id']} ({validation.get('finding', '?')}); "
          f"scripts/demo.sh took {demo_seconds:.0f} s; load average "
          f"{benchlib.load_average():.1f}:")
    print(f"  {'part':<82} {'seconds':>8} {'share':>6}  {'whose':<10} configured")
    for name, seconds, configured, whose in rows:
        print(f"  {name:<82} {seconds:8.3f} {seconds / total:6.1%}  {whose:<10} {configured}")
    print(f"  {'v2 live -> recovery validated':<82} {total:8.3f} {1:6.1%}")
    share = {}
    for _, seconds, _, whose in rows:
        share[whose] = share.get(whose, 0) + seconds
    print("  by whose time: " + ", ".join(
        f"{whose} {seconds:.2f} s ({seconds / total:.1%})" for whose, seconds in share.items()))
    print("  (the webhook-to-incident and request-to-start parts are Backout's own share; "
          "under the automatic policy the operator parts disappear)")
    if args.keep:
        print(f"  demo folder kept: {folder}")
    else:
        subprocess.run(["rm", "-rf", folder], check=False)


if __name__ == "__main__":
    main()
