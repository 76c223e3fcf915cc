"""Issue #8's scale run: 5,000 simulated devices with mutual TLS through HAProxy to the lab's
broker cluster (python -m scale from lab/, or make scale). See __main__.py."""
