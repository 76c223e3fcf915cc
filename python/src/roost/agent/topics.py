"""The agent's topic layout. Everything a Pi touches lives under `roost/<site>/<client-id>/`,
so one ACL pattern (`pattern readwrite roost/<site>/%c/#`) confines it:

    roost/<site>/<client-id>/telemetry/<metric>   out, QoS 1, retained (latest value)
    roost/<site>/<client-id>/status               out, QoS 1, retained, birth + last will
    roost/<site>/<client-id>/cmd/<name>           in, MQTT 5 request
    roost/<site>/<client-id>/reply/<name>         out, reply when a request has no response topic
"""

from __future__ import annotations


def base(site: str, client_id: str) -> str:
    return f"roost/{site}/{client_id}"


def telemetry(site: str, client_id: str, metric: str) -> str:
    return f"{base(site, client_id)}/telemetry/{metric}"


def status(site: str, client_id: str) -> str:
    return f"{base(site, client_id)}/status"


def commands(site: str, client_id: str) -> str:
    """The subscription filter for requests to this agent."""
    return f"{base(site, client_id)}/cmd/+"


def reply(site: str, client_id: str, name: str) -> str:
    return f"{base(site, client_id)}/reply/{name}"


def parse(topic: str) -> tuple[str, str, str, str] | None:
    """Split `roost/site/client/kind/...` into (site, client, kind, rest); None if foreign."""
    parts = topic.split("/", 4)
    if len(parts) < 4 or parts[0] != "roost":
        return None
    return parts[1], parts[2], parts[3], parts[4] if len(parts) == 5 else ""
