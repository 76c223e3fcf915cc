"""Sans-IO MQTT 3.1.1 / 5.0 packet model and codec.

Nothing in this package imports asyncio, socket, ssl or time: bytes in, packets out.
"""
