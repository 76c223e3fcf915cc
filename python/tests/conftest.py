"""Settings for every test under tests/."""

from hypothesis import settings

# Tests never assert a wall time: Hypothesis's per-example deadline (200 ms) is one, and a
# loaded CI machine misses it while the code is right.
settings.register_profile("roost", deadline=None)
settings.load_profile("roost")
