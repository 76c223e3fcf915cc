"""The Roost MQTT broker: sans-IO engine (`engine`), topic router, durable store, and
one asyncio module (`server`) that does all the network I/O."""
