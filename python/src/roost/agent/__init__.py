"""The Roost device agent: telemetry up, commands down, nothing lost while the network is
away. Topic layout in `topics.py`; configuration, systemd unit and ACL in README.md."""
