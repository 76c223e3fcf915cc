"""Roost: a clustered MQTT broker and device agent for Raspberry Pi fleets."""

__version__ = "0.1.0"
