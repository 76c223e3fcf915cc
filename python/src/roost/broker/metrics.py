"""Prometheus metrics computed from the engine's own counters at scrape time: the hot
path only bumps the integers `$SYS` needs anyway, and pays nothing for Prometheus.

The names are a contract with the monitoring role's alert rules; do not rename them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from roost.broker.server import Server


class BrokerCollector(Collector):
    def __init__(self, server: Server) -> None:
        self.server = server

    def collect(self) -> Iterator[Metric]:
        server = self.server
        broker = server.broker
        stats = broker.stats
        yield GaugeMetricFamily("roost_connections", "MQTT clients connected",
                                value=sum(1 for c in broker.connections if c.connected))
        for name, counts, what in (("received", stats.received, "from clients"),
                                   ("sent", stats.sent, "to clients")):
            family = CounterMetricFamily(f"roost_messages_{name}", f"PUBLISH packets {what}",
                                         labels=["qos"])
            for qos, count in enumerate(counts):
                family.add_metric([str(qos)], count)
            yield family
        yield CounterMetricFamily("roost_bytes_received", "bytes read from clients",
                                  value=stats.bytes_received)
        yield CounterMetricFamily("roost_bytes_sent", "bytes written to clients",
                                  value=stats.bytes_sent)
        dropped = CounterMetricFamily("roost_messages_dropped", "messages not delivered",
                                      labels=["reason"])
        dropped.add_metric(["queue_full"], stats.dropped_queue_full)
        dropped.add_metric(["too_large"], stats.dropped_too_large)
        yield dropped
        yield CounterMetricFamily(
            "roost_requests_answered_undelivered",
            "requests (Response Topic) the broker answered with an error: not deliverable",
            value=stats.undelivered_answers)
        yield GaugeMetricFamily("roost_queued_messages", "QoS 1/2 messages waiting in sessions",
                                value=sum(len(s.queue) for s in broker.sessions.values()))
        yield GaugeMetricFamily("roost_retained_messages", "retained messages",
                                value=len(broker.retained))
        denials = CounterMetricFamily("roost_acl_denials", "accesses the ACL refused",
                                      labels=["access"])
        for access, count in stats.acl_denials.items():
            denials.add_metric([access], count)
        yield denials
        yield CounterMetricFamily("roost_tls_failures", "TLS handshakes that failed",
                                  value=server.tls_failures)
        yield CounterMetricFamily("roost_auth_failures", "CONNECTs refused by authentication",
                                  value=stats.auth_failures)
        expiry = GaugeMetricFamily("roost_certificate_expiry_timestamp_seconds",
                                   "when each listener's server certificate expires",
                                   labels=["certificate"])
        for state in server.listeners:
            if state.tls is not None:
                expiry.add_metric([state.auth.name], state.tls.expires)
        yield expiry
        links = server.links
        if links is not None:
            up = GaugeMetricFamily("roost_bridge_up", "1 while the bridge to a cluster peer "
                                   "is connected", labels=["peer"])
            for peer, connected in links.peers().items():
                up.add_metric([peer], int(connected))
            yield up
            ext = GaugeMetricFamily("roost_external_bridge_up", "1 while an external bridge "
                                    "is connected", labels=["bridge"])
            for name, connected in links.bridges().items():
                ext.add_metric([name], int(connected))
            yield ext
