"""`/metrics`: the fleet in Prometheus exposition format, built from the hub on each scrape.

    roost_fleet_pi_online{pi,site}                    1 online, 0 offline or never seen
    roost_fleet_pi_last_seen_timestamp_seconds{...}   only for Pis seen at least once
    roost_fleet_pi_queue_depth{...}                   store-and-forward queue, from status
    roost_fleet_pi_queue_dropped_total{...}           samples the agent dropped (queue full)
    roost_fleet_broker_connections{node}              from the node's $SYS topics
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from roost.dashboard.hub import Hub

LABELS = ["pi", "site"]


class FleetCollector:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub

    def collect(self) -> Iterator[Metric]:
        view: dict[str, Any] = self.hub.read(lambda fleet, now: fleet.view(now, series=False))
        online = GaugeMetricFamily("roost_fleet_pi_online", "1 if the Pi is online", labels=LABELS)
        seen = GaugeMetricFamily("roost_fleet_pi_last_seen_timestamp_seconds",
                                 "Time of the Pi's last readable message", labels=LABELS)
        depth = GaugeMetricFamily("roost_fleet_pi_queue_depth",
                                  "Samples waiting in the agent's store-and-forward queue",
                                  labels=LABELS)
        dropped = CounterMetricFamily("roost_fleet_pi_queue_dropped",
                                      "Samples the agent dropped because its queue was full",
                                      labels=LABELS)
        for pi in view["pis"]:
            labels = [pi["client_id"], pi["site"]]
            online.add_metric(labels, 1.0 if pi["state"] == "online" else 0.0)
            for family, key in ((seen, "last_seen"), (depth, "queue_depth"),
                                (dropped, "dropped")):
                if pi[key] is not None:
                    family.add_metric(labels, float(pi[key]))
        conns = GaugeMetricFamily("roost_fleet_broker_connections",
                                  "Connections a broker node reports in $SYS", labels=["node"])
        for node in view["brokers"]:
            if node["connections"] is not None:
                conns.add_metric([node["node"]], node["connections"])
        yield from (online, seen, depth, dropped, conns)


def exposition(hub: Hub) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(hub))
    return bytes(generate_latest(registry))
