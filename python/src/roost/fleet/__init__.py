"""Operator tools: `roost fleet status` reads the agents' retained status and telemetry."""
