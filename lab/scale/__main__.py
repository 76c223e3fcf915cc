"""Issue #8's scale run against a running lab (make scale-run, or python -m scale from lab/;
make scale starts and deploys the lab first). Phases, each bounded in time:

  connect   SIMULATED devices (2 processes, devices.py) connect with mutual TLS through
            HAProxy to the 3 brokers, at most --gate handshakes at once per process
  load      one stage per --rates entry: every device publishes QoS 1 for --duration s;
            a probe (probe.py) subscribed through HAProxy measures end-to-end latency and
            finds acknowledged messages that never arrived
  storm     systemctl restart haproxy: every connection is cut; how long until every device
            and every Pi's agent is connected again, and is every broker still the same
            process, active and healthy?

The devices connect to the load balancer's address on the lab network (not the loopback
port, whose docker-proxy would hide their addresses) from --sources addresses added to the
lab's bridge for the run, since HAProxy balances by source address. Results:
lab/results/scale-<UTC stamp>.txt and .json.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from scale import certs, devices, hosts, probe, stats

ROOT = Path(__file__).resolve().parents[2]


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


class Report:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.data: dict[str, Any] = {}

    def say(self, line: str) -> None:
        print(f"scale: {line}", flush=True)
        self.lines.append(line)


def ask(conn: Connection, msg: dict[str, Any], timeout: float) -> Any:
    conn.send(msg)
    if not conn.poll(timeout):
        raise SystemExit(f"no answer to {msg['cmd']} from a generator within {timeout:.0f} s")
    reply = conn.recv()
    if isinstance(reply, dict) and "error" in reply:
        raise SystemExit(reply["error"])
    return reply


def ms(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def secs(x: float | None) -> str:
    return "never" if x is None else f"{x:.1f} s"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lab", default="roost-scale")
    p.add_argument("--inventory", type=Path, default=ROOT / "inventory" / "lab-roost-scale")
    p.add_argument("--devices", type=int, default=5000)
    p.add_argument("--procs", type=int, default=2)
    p.add_argument("--sources", type=int, default=100)
    p.add_argument("--rates", default="1000,2500", help="msg/s of the whole fleet, per stage")
    p.add_argument("--duration", type=float, default=60)
    p.add_argument("--gate", type=int, default=50)
    p.add_argument("--site", default="home")
    p.add_argument("--connect-timeout", type=float, default=300)
    p.add_argument("--storm-timeout", type=float, default=300)
    a = p.parse_args()
    rates = [float(r) for r in a.rates.split(",")]
    if not 1 <= a.devices <= 60000 or a.procs < 1 or not 1 <= a.sources <= 1000:
        raise SystemExit("--devices must be 1..60000, --procs at least 1, --sources 1..1000")
    if not 0 < a.duration <= 300 or any(r <= 0 for r in rates):
        raise SystemExit("--duration must be 1..300 s and every --rates entry above 0")

    r = Report()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.gmtime())
    r.data["command"] = "python -m scale " + shlex.join(sys.argv[1:])
    r.data["settings"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(a).items()}
    r.say(f"scale run {stamp} UTC: {r.data['command']}")

    lab = a.lab
    brokers, lbs, pis = (hosts.group(lab, g) for g in ("brokers", "loadbalancers", "pis"))
    if not brokers or not lbs:
        raise SystemExit(f"no lab {lab} is running (make scale-lab)")
    lb = lbs[0]
    lb_ip = hosts.address(lb, lab)
    bridge, subnet = hosts.network(lab)
    sources = hosts.source_addresses(subnet, a.sources + 1)  # the last one is the probe's
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    if hard < a.devices // a.procs + 500:
        raise SystemExit(f"open files limit {hard} is too low for {a.devices} devices in "
                         f"{a.procs} processes (raise --procs)")

    t = time.monotonic()
    names = [f"sim-{i:05d}" for i in range(1, a.devices + 1)]
    ca, creds = certs.issue(a.inventory, ROOT / ".lab" / "scale", [*names, "scale-probe"])
    r.say(f"certificates for {a.devices} devices + probe ready in {time.monotonic() - t:.1f} s")

    limits = hosts.haproxy_limits(lb)
    r.data["haproxy"] = limits
    r.say(f"haproxy on {lb}: maxconn {limits['maxconn']}, frontend limit "
          f"{limits['frontend_limit']}, ulimit-n {limits['ulimit_n']}")
    need = a.devices + len(pis) + 1
    if min(limits["maxconn"], limits["frontend_limit"]) < need:
        raise SystemExit(f"HAProxy accepts {limits['maxconn']} connections, the run needs "
                         f"{need}: raise haproxy_maxconn (roles/haproxy)")
    r.data["before"] = {b: hosts.broker_state(b) for b in brokers}

    base = {"host": lb_ip, "port": 8883, "server_hostname": lb.removeprefix(lab + "-"),
            "ca": str(ca), "site": a.site, "keepalive": 60,
            "deadline": a.connect_timeout + a.storm_timeout + len(rates) * (a.duration + 90)
            + 120}
    lab_ = Lab(a, r, base, {b: hosts.address(b, lab) for b in brokers}, lb, pis)
    hosts.set_sources(bridge, sources, True)
    since = time.time()
    try:
        lab_.run(names, creds, sources, rates)
    except SystemExit as err:  # the figures so far are kept, with the reason it stopped
        r.say(f"stopped: {err}")
        r.data["stopped"] = str(err)
        raise
    finally:
        lab_.alarms(since)
        out = ROOT / "lab" / "results" / f"scale-{stamp}"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".txt").write_text("\n".join(r.lines) + "\n")
        out.with_suffix(".json").write_text(json.dumps(r.data, indent=1) + "\n")
        print(f"scale: results in {out}.txt and .json")
        hosts.set_sources(bridge, sources, False)


@dataclass
class Lab:
    """What every phase needs: the settings, the report, the lab's hosts and the pipes to the
    generator processes."""

    a: argparse.Namespace
    r: Report
    base: dict[str, Any]
    brokers: dict[str, str]  # container -> address
    lb: str
    pis: list[str]
    pipes: list[Connection] = field(default_factory=list)

    def statuses(self) -> list[dict[str, Any]]:
        return [ask(c, {"cmd": "status"}, 30) for c in self.pipes]

    def nodes(self, key: str) -> None:
        """Each broker's connections (its /metrics), RSS, restarts and /healthz."""
        row = {}
        for b, st in zip(self.brokers, hosts.each(hosts.broker_state, list(self.brokers)),
                         strict=True):
            url = f"http://{self.brokers[b]}:9883"
            _, text = hosts.http_get(f"{url}/metrics")
            row[b] = {**st, "healthz": hosts.http_get(f"{url}/healthz")[0],
                      "connections": hosts.metric(text, "roost_connections")}
        self.r.data.setdefault("nodes", {})[key] = row
        self.r.say(f"  brokers {key} (load {loadavg()}): " + "; ".join(
            f"{hosts.short(b)} {v['connections']:.0f} conn {v['rss_mb']} MB (peak "
            f"{v['peak_rss_mb']}) healthz "
            f"{v['healthz']} pid {v['pid']} restarts {v['restarts']}"
            if v["connections"] is not None
            else f"{hosts.short(b)} /metrics unread, {v['rss_mb']} MB healthz {v['healthz']} "
            f"pid {v['pid']} restarts {v['restarts']}" for b, v in row.items()))

    def alarms(self, since: float) -> None:
        """Did a broker fall over during the run? Its journal's watchdog kills, crashes and
        restarts since the run began."""
        try:
            found = dict(zip(self.brokers, hosts.each(lambda b: hosts.broker_alarms(b, since),
                                                      list(self.brokers)), strict=True))
        except (RuntimeError, subprocess.TimeoutExpired) as err:  # keep the other figures
            self.r.say(f"brokers' journals not read: {err}")
            return
        self.r.data["broker_alarms"] = found
        self.r.say("brokers' journals since the start (watchdog kills, crashes, restarts): "
                   + "; ".join(f"{hosts.short(b)} {len(v)}" for b, v in found.items()))
        for b, lines in found.items():
            for line in lines[:5]:
                self.r.say(f"  {hosts.short(b)}: {line}")

    def run(self, names: list[str], creds: dict[str, tuple[Path, Path]], sources: list[str],
            rates: list[float]) -> None:
        a, ctx = self.a, mp.get_context("spawn")
        self.nodes("before connect")  # idle: the Pis only
        procs = []
        t0 = time.monotonic()
        for k in range(a.procs):
            mine = [(i, names[i], *map(str, creds[names[i]]))
                    for i in range(k, a.devices, a.procs)]
            parent, child = ctx.Pipe()
            conf = {**self.base, "devices": mine, "sources": sources[:-1], "gate": a.gate,
                    "backoff_initial": 1.0, "backoff_cap": 60.0}
            proc = ctx.Process(target=devices.main, args=(conf, child), daemon=True)
            proc.start()
            self.pipes.append(parent)
            procs.append(proc)
        try:
            self.connect(t0)
            cert, key = map(str, creds["scale-probe"])
            probe_conf = {**self.base, "cert": cert, "key": key, "client_id": "scale-probe",
                          "source": sources[-1]}
            self.load(ctx, probe_conf, rates)
            self.storm()
        finally:
            cpu = [ask(c, {"cmd": "close"}, 30)["cpu"] for c in self.pipes]
            wall = time.monotonic() - t0
            self.r.data["generator_cpu_total"] = [round(x / wall, 2) for x in cpu]
            self.r.say("generator CPU over the whole run: "
                       + " + ".join(f"{x / wall:.2f}" for x in cpu)
                       + " (CPU s / wall s, per process)")
            for proc in procs:
                proc.join(10)

    def connect(self, t0: float) -> None:
        a, r = self.a, self.r
        r.say(f"connect: {a.devices} devices in {a.procs} processes, {a.gate} handshakes at "
              f"once each, from {a.sources} addresses (load {loadavg()})")
        while time.monotonic() < t0 + a.connect_timeout:
            if sum(s["connected"] for s in self.statuses()) == a.devices:
                break
            time.sleep(1)
        wall = time.monotonic() - t0
        st = self.statuses()
        up = sum(s["connected"] for s in st)
        took = max(s["full_at"] for s in st) - t0 if up == a.devices else None
        row = r.data["connect"] = {
            "devices": a.devices, "connected": up, "seconds": took,
            "failed_attempts": sum(s["failures"] for s in st),
            "generator_cpu": [round(s["cpu"] / wall, 2) for s in st], "load": loadavg()}
        r.say(f"  {up} of {a.devices} connected"
              + (f" in {took:.1f} s ({a.devices / took:.0f}/s)" if took else f" after {wall:.0f} s")
              + f"; failed attempts {row['failed_attempts']}; generator CPU "
              + " + ".join(str(x) for x in row["generator_cpu"]))
        self.nodes("after connect")
        if up < a.devices:
            raise SystemExit(f"only {up} of {a.devices} devices connected within "
                             f"{a.connect_timeout:.0f} s")

    def load(self, ctx: Any, conf: dict[str, Any], rates: list[float]) -> None:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=probe.main, args=(conf, child), daemon=True)
        proc.start()
        hello = parent.recv() if parent.poll(60) else {"error": "no answer within 60 s"}
        if "ready" not in hello:
            raise SystemExit(f"the probe did not subscribe: {hello.get('error')}")
        self.r.data["stages"] = []
        try:
            for rate in rates:
                self.stage(rate, parent)
        finally:
            parent.send({"cmd": "close"})
            proc.join(10)

    def stage(self, rate: float, probe_conn: Connection) -> None:
        a, r = self.a, self.r
        r.say(f"load: {rate:.0f} msg/s offered at QoS 1 ({rate / a.devices:.3f} per device) "
              f"for {a.duration:.0f} s (load {loadavg()})")
        for c in self.pipes:
            c.send({"cmd": "publish", "rate": rate / a.devices, "duration": a.duration})
        results = []
        for c in self.pipes:
            if not c.poll(a.duration + 60):
                raise SystemExit("a generator did not finish its stage")
            results.append(c.recv())
        got = ask(probe_conn, {"cmd": "take"}, 60)
        acked = {k: v for res in results for k, v in res["acked"].items()}
        n_acked = sum(len(v) for v in acked.values())
        acct = stats.delivery(acked, got["seen"])
        lat = got["lat_ms"]
        row = {"offered": rate, "sent": sum(x["sent"] for x in results),
               "skipped": sum(x["skipped"] for x in results), "acked": n_acked,
               "acked_per_s": round(n_acked / a.duration, 1), "received": got["count"],
               "received_per_s": round(got["count"] / got["wall"], 1) if got["wall"] else None,
               "unacked": sum(x["unacked"] for x in results), **acct,
               "p50_ms": stats.percentile(lat, 50), "p99_ms": stats.percentile(lat, 99),
               "max_ms": max(lat) if lat else None,
               "generator_cpu": [round(x["cpu"] / x["wall"], 2) for x in results],
               "probe_cpu": round(got["cpu"] / max(got["wall"], 1e-9), 2), "load": loadavg()}
        r.data["stages"].append(row)
        r.say(f"  sent {row['sent']}, acked {n_acked} ({row['acked_per_s']:.0f}/s), received "
              f"{row['received']} ({row['received_per_s']}/s); lost {acct['lost']}, "
              f"duplicates {acct['duplicates']}, window full {row['skipped']}, unacked "
              f"{row['unacked']}")
        r.say(f"  latency p50 {ms(row['p50_ms'])} ms, p99 {ms(row['p99_ms'])} ms, max "
              f"{ms(row['max_ms'])} ms; generator CPU "
              + " + ".join(str(x) for x in row["generator_cpu"]) + f", probe {row['probe_cpu']}")
        self.nodes(f"after {rate:.0f} msg/s")

    def storm(self) -> None:
        a, r = self.a, self.r
        # only Pis whose agent runs can come back (a lab still deploying has some without)
        pis = [p for p, up in zip(self.pis, hosts.each(hosts.agent_active, self.pis),
                                  strict=True) if up]
        before = {b: hosts.broker_state(b) for b in self.brokers}
        st = self.statuses()
        failures0, cpu0 = sum(s["failures"] for s in st), [s["cpu"] for s in st]
        r.say(f"storm: systemctl restart haproxy on {hosts.short(self.lb)} with {a.devices} "
              f"devices and {len(pis)} Pis connected (load {loadavg()})")
        t_wall, t0 = time.time(), time.monotonic()
        took = hosts.restart_haproxy(self.lb)
        back: dict[str, float | None] = dict.fromkeys(pis)
        since: list[float | None] = []
        while time.monotonic() < t0 + a.storm_timeout:
            since = [x for c in self.pipes for x in ask(c, {"cmd": "since", "t": t0}, 30)]
            waiting = [p for p, v in back.items() if v is None]
            for p, v in zip(waiting, hosts.each(lambda c: hosts.agent_back(c, t_wall), waiting),
                            strict=True):
                back[p] = None if v is None else round(v - t_wall, 2)
            if None not in since and None not in back.values():
                break
            time.sleep(2)
        wall = time.monotonic() - t0
        st = self.statuses()
        shares = stats.time_to_share(since, a.devices)
        pi_last = max((v for v in back.values() if v is not None), default=None)
        pis_back = sum(v is not None for v in back.values())
        after = {b: hosts.broker_state(b) for b in self.brokers}
        same = {b: after[b]["pid"] == before[b]["pid"] and after[b]["restarts"]
                == before[b]["restarts"] and after[b]["active"] == "active"
                for b in self.brokers}
        row = r.data["storm"] = {
            "restart_seconds": round(took, 2), "devices_back": shares,
            "devices_connected": sum(s["connected"] for s in st),
            "failed_attempts": sum(s["failures"] for s in st) - failures0,
            "pis_back": pis_back, "pis_last_seconds": pi_last, "pis": back,
            "brokers_same_process": same,
            "generator_cpu": [round((s["cpu"] - c) / wall, 2) for s, c in zip(st, cpu0,
                                                                             strict=True)]}
        r.say(f"  haproxy restart took {took:.1f} s; devices back: "
              + ", ".join(f"{k} {secs(v)}" for k, v in shares.items())
              + f"; failed attempts {row['failed_attempts']}")
        r.say(f"  Pis' agents back: {pis_back} of {len(pis)} running ({len(self.pis)} Pis), "
              f"the last after {secs(pi_last)}; "
              "broker processes unchanged (same PID, no restart): "
              + ", ".join(f"{hosts.short(b)} {'yes' if ok else 'NO'}" for b, ok in same.items())
              + "; generator CPU " + " + ".join(str(x) for x in row["generator_cpu"]))
        self.nodes("after the storm")


if __name__ == "__main__":
    main()
