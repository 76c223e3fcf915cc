"""Mitogen for Ansible's linear strategy, named in ansible.cfg (strategy = mitogen_linear).

ansible.cfg points at this directory of the repository rather than into a virtualenv's
site-packages (whose path depends on the Python version): the strategy itself is the
`mitogen` package's, from requirements/lab.txt.

Additions to it. A task whose `when` is false for a host is skipped here, in the
controller process, instead of in a forked worker: ansible-core forks a worker for every
task and host and only there evaluates `when`, and a re-run of the kit skips about a
quarter of its task runs, each fork ~30 ms of CPU for a result the controller can
compute itself. So is a loop over an empty list. The result, its callbacks and its path
through the strategy are the worker's; anything this cannot decide exactly as the worker
would (loops over items, delegation, a condition that fails to evaluate or warns) goes
to a worker as before.

When every fork is busy, ansible-core polls the workers every
0.1 ms (a waitpid per worker each time), which py-spy put at 15% of the controller
process's busy time on a 24-host re-run. This waits on the workers' exit instead. And
Mitogen's own _queue_task resolves the task's action and connection plugins before every
fork, so the worker inherits warm loader caches; once per action and connection warms
them as well (that lookup was 6% of the controller process's time).
"""

from __future__ import annotations

import multiprocessing.connection
import typing as t

from ansible import constants as C  # type: ignore[import-untyped]
from ansible._internal import _display_utils  # type: ignore[import-untyped]
from ansible._internal._templating._engine import (  # type: ignore[import-untyped]
    TemplateEngine,
)
from ansible.executor.task_result import (  # type: ignore[import-untyped]
    _RawTaskResult,
)
from ansible_mitogen.plugins.strategy.mitogen_linear import (  # type: ignore[import-untyped]
    StrategyModule as _MitogenLinear,
)
from ansible_mitogen.strategy import StrategyMixin  # type: ignore[import-untyped]

__all__ = ["StrategyModule", "skip_result"]


def skip_result(
    host: t.Any, task: t.Any, task_vars: dict[str, t.Any], play_context: t.Any, loader: t.Any
) -> dict[str, t.Any] | None:
    """The result a worker would send for a task it skips on `when`, or None.

    None means "let a worker decide": the task runs, loops over items, is delegated, or
    its condition raises or warns. Mirrors TaskExecutor.run/_execute up to the conditional,
    without mutating the task (which every host shares).
    """
    if task.loop_with or task.delegate_to or task.action in C._ACTION_META:
        return None
    if task.loop is not None:
        return _no_items(task, task_vars, loader)
    if not task.when:
        return None
    variables = with_search_path(task, task_vars, loader)
    templar = TemplateEngine(loader=loader, variables=variables)
    try:
        with _display_utils.DeferredWarningContext(variables=variables) as warnings:
            # The worker evaluates `when` with the connection's magic variables added.
            context = play_context.set_task_and_variable_override(
                task=task, variables=variables, templar=templar
            )
            context.post_validate(templar=templar)
            if not context.remote_addr:
                context.remote_addr = host.address
            context.update_vars(variables)
            why: dict[str, t.Any] = {}
            if task._resolve_conditional(task.when, variables, result_context=why):
                return None
            result = dict(changed=False, skipped=True, skip_reason="Conditional result was False")
            result |= why
            task.update_result_no_log(templar, result)
    except Exception:  # the worker raises it with its own context
        return None
    if warnings.get_warnings() or warnings.get_deprecation_warnings():
        return None
    return result


def with_search_path(task: t.Any, task_vars: dict[str, t.Any], loader: t.Any) -> dict[str, t.Any]:
    """A copy of the task's variables with ansible_search_path, which TaskExecutor.run sets
    first for every task (lookups such as `template` find a role's files through it)."""
    variables = task_vars.copy()
    variables["ansible_search_path"] = search = task.get_search_path()
    if loader.get_basedir() not in search:
        search.append(loader.get_basedir())
    return variables


def _no_items(task: t.Any, task_vars: dict[str, t.Any], loader: t.Any) -> dict[str, t.Any] | None:
    """A loop over an empty list: TaskExecutor.run skips it before `when` or a connection."""
    variables = with_search_path(task, task_vars, loader)
    try:
        with _display_utils.DeferredWarningContext(variables=variables) as warnings:
            items = TemplateEngine(loader=loader, variables=variables).template(task.loop)
    except Exception:
        return None
    if items != [] or warnings.get_warnings() or warnings.get_deprecation_warnings():
        return None
    return dict(changed=False, skipped=True, skipped_reason="No items in the list", results=[])


class StrategyModule(_MitogenLinear):  # type: ignore[misc]
    def __init__(self, tqm: t.Any) -> None:
        super().__init__(tqm)
        self._warmed: set[tuple[str, t.Any]] = set()

    def _queue_task(
        self, host: t.Any, task: t.Any, task_vars: dict[str, t.Any], play_context: t.Any
    ) -> None:
        result = skip_result(host, task, task_vars, play_context, self._loader)
        if result is None:
            if not task.throttle:  # a throttle limits the workers the base may use
                self._wait_for_a_free_worker()
            plugins = (task.action, play_context.connection)
            if plugins in self._warmed:  # past Mitogen's lookups, to ansible-core's
                super(StrategyMixin, self)._queue_task(host, task, task_vars, play_context)
            else:
                self._warmed.add(plugins)
                super()._queue_task(host, task, task_vars, play_context)
            return
        # What _queue_task and WorkerProcess do around TaskExecutor.run(), minus the fork.
        self._queued_task_cache[(host.name, task._uuid)] = {
            "host": host,
            "task": task,
            "task_vars": task_vars,
            "play_context": play_context,
        }
        self._tqm.send_callback("v2_runner_on_start", host, task)
        self._final_q.send_task_result(
            _RawTaskResult(host=host, task=task, return_data=result, task_fields=task.dump_attrs())
        )
        self._pending_results += 1

    def _wait_for_a_free_worker(self) -> None:
        workers = self._workers
        if all(w is not None and w.is_alive() for w in workers):
            # Bounded: past it the base's own loop takes over, as without this.
            multiprocessing.connection.wait([w.sentinel for w in workers], timeout=1)
