"""Mitogen for Ansible's linear strategy, named in ansible.cfg (strategy = mitogen_linear).

ansible.cfg points at this directory of the repository rather than into a virtualenv's
site-packages (whose path depends on the Python version): the strategy itself is the
`mitogen` package's, from requirements/lab.txt.
"""

from ansible_mitogen.plugins.strategy.mitogen_linear import (  # type: ignore[import-untyped]
    StrategyModule,
)

__all__ = ["StrategyModule"]
