"""The chaos run of issue #8: faults injected into the lab while telemetry flows."""
