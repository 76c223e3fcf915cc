"""The chaos run (`make chaos`): steady telemetry from every lab Pi, a checker through the
load balancer, and one fault at a time. Bounded: every wait has a limit, the whole run
about 15 minutes. Results: lab/results/chaos-<UTC stamp>.txt and .json.

    cd lab && ../.venv/bin/python -m chaos --lab roost-chaos \
        --inventory ../inventory/lab-roost-chaos
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml  # type: ignore[import-untyped]

from chaos import faults, report
from chaos.checker import Checker
from chaos.journal import kill_target, link_events, placement
from chaos.lab import ROOT, Lab, LabError, issue_cert
from chaos.ledger import Window

CHECKER_ID = "chaos-checker"
VARS = ROOT / "lab/chaos/vars.yml"


def main() -> int:
    p = argparse.ArgumentParser(prog="chaos", description="One fault at a time on a running "
                                "lab while every Pi sends telemetry (lab/README.md).")
    p.add_argument("--lab", default="roost-lab", help="LAB_NAME of the running lab")
    p.add_argument("--inventory", type=Path, required=True)
    p.add_argument("--settle", type=float, default=30, help="seconds of calm after a fault")
    p.add_argument("--cut", type=float, default=60, help="seconds a Pi is off the network")
    p.add_argument("--queue-cut", type=float, default=45,
                   help="seconds the small-queue Pi is off the network")
    p.add_argument("--ping-every", type=float, default=5, help="seconds between commands")
    p.add_argument("--ping-expiry", type=int, default=20,
                   help="Message Expiry Interval of each command: the broker holding an "
                   "unreachable Pi's session answers it with an error after that long")
    p.add_argument("--readmit", action=argparse.BooleanOptionalAction, default=True,
                   help="re-admit the revoked Pi at the end (a new key and certificate)")
    p.add_argument("--out", type=Path, default=ROOT / "lab/results")
    args = p.parse_args()
    logging.basicConfig(level=logging.WARNING, format="chaos: %(name)s: %(message)s")
    try:
        return Run(args).go()
    except LabError as err:
        print(f"chaos: error: {err}", file=sys.stderr)
        return 1


class Run:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lab = Lab(args.lab, args.inventory.resolve())
        self.groups = self.lab.groups()
        if len(self.groups["pis"]) < 3 or not self.groups["loadbalancers"]:
            raise LabError("the chaos run needs 3 Pis and a load balancer "
                           f"(make lab LAB_NAME={args.lab} PIS=3)")
        self.queue_pi = yaml.safe_load(VARS.read_text())["chaos_queue_pi"]
        self.pis = self.groups["pis"]
        self.cut_pi, self.revoke_pi = [p for p in self.pis if p != self.queue_pi][:2]
        self.windows: list[Window] = []
        self.notes: list[dict[str, Any]] = []
        self.stop = threading.Event()
        self.revoked: set[str] = set()

    def go(self) -> int:
        lb = self.groups["loadbalancers"][0]
        tls = issue_cert(self.lab.ca_dir(), ROOT / ".lab/chaos", CHECKER_ID)
        self.checker = Checker(self.lab.address(lb), 8883, tls, "home", CHECKER_ID,
                               ping_expiry=self.args.ping_expiry)
        self.started = time.time()
        self.checker.start()
        if self._flowing(self.started, self.pis, 90) is None:
            raise LabError(f"no telemetry from every Pi within 90 s through {lb} (is the lab "
                           "deployed with -e @lab/chaos/vars.yml? make chaos does it)")
        pinger = threading.Thread(target=self._pinger, daemon=True)
        pinger.start()
        mark = time.time()
        time.sleep(self.args.settle)
        self._close("baseline", mark, {}, mark)
        node, held = self._kill_target()
        self._fault("kill -9 broker", lambda: faults.kill_broker(self.lab, node))
        self.notes[-1]["pis_there"] = held
        self._fault("HAProxy restart", lambda: faults.restart_haproxy(self.lab, lb))
        self._fault("rolling broker restart", lambda: faults.rolling_restart(self.lab))
        self._fault(f"network cut {self.args.cut:.0f} s",
                    lambda: faults.cut(self.lab, self.cut_pi, self.args.cut))
        self._fault("queue full",
                    lambda: faults.cut(self.lab, self.queue_pi, self.args.queue_cut))
        self.revoked.add(self.revoke_pi)
        self._fault("revocation", lambda: faults.revoke(self.lab, self.revoke_pi))
        self.notes[-1]["refused_handshakes"] = self._refusals(self.windows[-1].start)
        if self.args.readmit:
            self.revoked.clear()
            self._fault("re-admission",
                        lambda: faults.readmit(self.lab, self.revoke_pi, VARS))
        self.stop.set()
        final = self._drained(120)
        time.sleep(self.args.ping_expiry + 3)  # the last replies, or the broker's answers
        self.checker.stop()
        return self._report(final)

    def _fault(self, name: str, inject: Callable[[], faults.Result]) -> None:
        start = time.time()
        print(f"chaos: {name} ...", file=sys.stderr, flush=True)
        restored, notes = inject()
        live = [p for p in self.pis if p not in self.revoked]
        back = self._flowing(restored, live, 150)
        notes["telemetry_back_s"] = None if back is None else round(back - restored, 1)
        time.sleep(self.args.settle)
        self._close(name, start, notes, restored)

    def _close(self, name: str, start: float, notes: dict[str, Any], restored: float) -> None:
        self.windows.append(Window(name, start, time.time()))
        notes["restored_after_s"] = round(restored - start, 1)
        notes["load"] = [round(x, 2) for x in os.getloadavg()]
        self.notes.append(notes)

    def _flowing(self, since: float, pis: list[str], bound: float) -> float | None:
        """Wait until every Pi in `pis` has a sample that arrived after `since`."""
        deadline = time.time() + bound
        while time.time() < deadline:
            with self.checker.lock:
                seen = {s.pi for s in self.checker.samples[-2000:] if s.at > since}
            if set(pis) <= seen:
                return time.time()
            time.sleep(0.5)
        return None

    def _drained(self, bound: float) -> dict[str, int]:
        """Per Pi, the seq of a status with an empty queue: everything up to it was acked."""
        since, deadline = time.time(), time.time() + bound
        final: dict[str, int] = {}
        live = [p for p in self.pis if p not in self.revoked]
        while time.time() < deadline and len(final) < len(live):
            with self.checker.lock:
                for st in self.checker.statuses:
                    if st.at > since and st.queue_depth == 0 and st.pi in live:
                        final[st.pi] = st.seq
            time.sleep(1)
        return final

    def _pinger(self) -> None:
        while not self.stop.wait(self.args.ping_every):
            for pi in self.pis:
                self.checker.ping(pi)

    def _refusals(self, since: float) -> int:
        """TLS handshakes the brokers refused since then for a revoked certificate."""
        return sum("certificate revoked" in line for b in self.groups["brokers"]
                   for line in self.lab.journal(b, "roost-broker.service", since))

    def _kill_target(self) -> tuple[str, list[str]]:
        """The broker to kill (`kill_target`) and the Pis it holds."""
        lines = {b: self.lab.journal(b, "roost-broker.service", self.started - 86400)
                 for b in self.groups["brokers"]}
        where = placement(lines)
        held = {b: [p for p in self.pis if where.get(p) == b] for b in self.groups["brokers"]}
        node = kill_target(held, where.get(CHECKER_ID))
        print(f"chaos: Pis per broker {held}, checker on {where.get(CHECKER_ID)}; "
              f"killing {node}", file=sys.stderr, flush=True)
        return node, held[node]

    def _diagnostics(self) -> dict[str, Any]:
        """Why the brokers closed the checker's connections, if they did, and when the
        load balancer saw a broker down or up (it then cuts that broker's connections:
        on-marked-down shutdown-sessions)."""
        said = {b: [line for line in self.lab.journal(b, "roost-broker.service", self.started)
                    if CHECKER_ID in line and ("closing" in line or "disconnected" in line)]
                for b in self.groups["brokers"]}
        lb = self.groups["loadbalancers"][0]
        marks = [line for line in self.lab.journal(lb, "haproxy.service", self.started)
                 if " is DOWN" in line or " is UP" in line]
        return {"brokers_on_checker": said, "lb_marks": marks}

    def _report(self, final: dict[str, int]) -> int:
        links = []
        for pi in self.pis:
            links += link_events(pi, self.lab.journal(pi, "roost-agent.service", self.started))
        try:
            extra = self._diagnostics()
        except LabError as err:  # the figures matter more than the diagnosis
            extra = {"diagnostics_error": str(err)}
        out = report.write(self.args.out, self.checker, self.windows, self.notes,
                           links=links, final=final, extra=extra)
        print(f"chaos: results in {out}.txt and {out}.json", file=sys.stderr)
        print(out.with_suffix(".txt").read_text())
        return 0


if __name__ == "__main__":
    sys.exit(main())
