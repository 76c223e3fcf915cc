"""The fleet dashboard (`roost fleet serve`): a read-only MQTT view of every Pi and broker
node, served as one plain HTML page with live updates (server-sent events), a JSON snapshot
and Prometheus metrics.

    fleet.py, pi.py, nodes.py, series.py, payloads.py   the state model (sans-IO)
    hub.py      the lock and change notification between threads
    reader.py   MQTT subscriptions (paho), one per broker node
    server.py, events.py, metrics.py   HTTP: page, /api/fleet, /events, /metrics, /healthz
    app.py, cli.py   wiring and the command line
    static/     the page: plain HTML, CSS and JavaScript, no build step
"""
