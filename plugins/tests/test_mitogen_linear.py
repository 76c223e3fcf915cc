"""plugins/strategy/mitogen_linear.py: tasks skipped in the controller process, run with a
real ansible-playbook against Mitogen's own mitogen_linear on two local hosts."""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys
import typing as t

import ansible_mitogen  # type: ignore[import-untyped]
import pytest

HERE = pathlib.Path(__file__).resolve().parents[1]
OURS = HERE / "strategy"
MITOGENS = pathlib.Path(ansible_mitogen.__file__).parent / "plugins" / "strategy"

Run = tuple[dict[str, t.Any], str, list[str]]  # JSON output, stderr, forked workers
Runs = dict[str, Run]

PLAYBOOK = """
- hosts: all
  gather_facts: false
  vars:
    flag: false
  tasks:
    - name: skipped
      ansible.builtin.command: /bin/false
      when: flag
      register: first
    - name: show the skipped task's registered result
      ansible.builtin.debug: {var: first}
    - name: magic variable the worker adds
      ansible.builtin.debug: {msg: "would be wrong"}
      when: ansible_host is not defined
    - name: runs
      ansible.builtin.debug: {msg: "ran on {{ inventory_hostname }}"}
      when: inventory_hostname == 'h2'
    - name: block
      when: not flag
      block:
        - name: skipped under no_log
          ansible.builtin.command: /bin/false
          when: flag
          no_log: true
          register: second
        - name: show the censored result
          ansible.builtin.debug: {var: second}
    - name: undefined in the condition
      ansible.builtin.debug: {msg: x}
      when: no_such_variable
      ignore_errors: true
    - name: a condition that warns
      ansible.builtin.debug: {msg: x}
      when: "{{ flag }}"
    - name: loop
      ansible.builtin.debug: {msg: "{{ item }}"}
      loop: [1, 2]
      when: item == 2
    - name: empty loop
      ansible.builtin.command: /bin/false
      loop: "{{ [1, 2] | select('gt', 5) | list }}"
      register: third
    - name: show the empty loop's registered result
      ansible.builtin.debug: {var: third}
    - name: delegated
      ansible.builtin.debug: {msg: x}
      delegate_to: h1
      when: flag
    - name: a role's template in the condition
      ansible.builtin.include_role:
        name: withtemplate
"""

# The condition reads the role's own template, found through ansible_search_path.
ROLE_TASKS = """
- name: role template differs
  ansible.builtin.debug: {msg: x}
  when: lookup('ansible.builtin.template', 'answer.j2') != 'answer 42'
"""

# Loaded by ansible-playbook as a callback: writes one line per forked worker.
FORKS = """
import os
from ansible.executor.process import worker
from ansible.plugins.callback import CallbackBase
_start = worker.WorkerProcess.start
def start(self):
    with open(os.environ["FORK_LOG"], "a") as log:
        log.write(f"{self._task.get_name()}|{self._host.name}\\n")
    return _start(self)
worker.WorkerProcess.start = start
class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "forks"
    CALLBACK_NEEDS_ENABLED = True
"""


def play(tmp: pathlib.Path, strategies: pathlib.Path, name: str, forks: int = 5) -> Run:
    (tmp / "pb.yml").write_text(PLAYBOOK)
    role = tmp / "roles" / "withtemplate"
    (role / "tasks").mkdir(parents=True, exist_ok=True)
    (role / "templates").mkdir(exist_ok=True)
    (role / "tasks" / "main.yml").write_text(ROLE_TASKS)
    (role / "templates" / "answer.j2").write_text("answer {{ 6 * 7 }}")
    (tmp / "ansible.cfg").write_text("[defaults]\n")
    python = sys.executable
    (tmp / "inv").write_text(
        "".join(
            f"{h} ansible_connection=local ansible_python_interpreter={python}\n"
            for h in ("h1", "h2")
        )
    )
    callbacks = tmp / "callbacks"
    callbacks.mkdir(exist_ok=True)
    (callbacks / "forks.py").write_text(FORKS)
    log = tmp / f"forks-{name}.log"
    env = dict(
        os.environ,
        ANSIBLE_CONFIG=str(tmp / "ansible.cfg"),
        ANSIBLE_STRATEGY_PLUGINS=str(strategies),
        ANSIBLE_STRATEGY="mitogen_linear",
        ANSIBLE_STDOUT_CALLBACK="ansible.posix.json",
        ANSIBLE_CALLBACK_PLUGINS=str(callbacks),
        ANSIBLE_CALLBACKS_ENABLED="forks",
        ANSIBLE_LOCAL_TEMP=str(tmp / "tmp"),
        FORK_LOG=str(log),
        ANSIBLE_FORKS=str(forks),
    )
    bindir = pathlib.Path(sys.executable).parent
    run = subprocess.run(
        [str(bindir / "ansible-playbook"), "-i", "inv", "pb.yml"],
        cwd=tmp,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    return json.loads(run.stdout), run.stderr, log.read_text().splitlines()


def normal(output: dict[str, t.Any]) -> list[t.Any]:
    """The tasks and per-host results, without ids and times."""
    return [
        [(task["task"]["name"], task["hosts"]) for task in p["tasks"]] for p in output["plays"]
    ] + [output["stats"]]


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    # "one fork": every task waits for the only worker (the strategy's wait on its exit).
    return {
        name: play(tmp_path_factory.mktemp(name), path, name, forks)
        for name, path, forks in (
            ("mitogen", MITOGENS, 5),
            ("ours", OURS, 5),
            ("one fork", OURS, 1),
        )
    }


def test_results_are_mitogens(runs: Runs) -> None:
    assert normal(runs["ours"][0]) == normal(runs["mitogen"][0])
    assert normal(runs["one fork"][0]) == normal(runs["mitogen"][0])
    assert runs["one fork"][2] == runs["ours"][2]


def test_skipped_task_forks_no_worker(runs: Runs) -> None:
    mitogen, ours = set(runs["mitogen"][2]), set(runs["ours"][2])
    skipped = {
        f"{task}|{host}"
        for task in (
            "skipped",
            "magic variable the worker adds",
            "skipped under no_log",
            "empty loop",
            "withtemplate : role template differs",
        )
        for host in ("h1", "h2")
    } | {"runs|h1"}
    assert skipped <= mitogen
    assert not skipped & ours
    assert mitogen - skipped == ours


def test_worker_still_decides_what_the_controller_cannot(runs: Runs) -> None:
    ours = set(runs["ours"][2])
    for task in ("undefined in the condition", "a condition that warns", "loop", "delegated"):
        assert {f"{task}|h1", f"{task}|h2"} <= ours, task
    assert "runs|h2" in ours


def test_a_warning_from_the_condition_reaches_the_result(runs: Runs) -> None:
    """A templated `when` is deprecated: the worker puts that in the result, so the
    controller must leave such a task to the worker rather than drop the message."""
    tasks = [t for p in runs["ours"][0]["plays"] for t in p["tasks"]]
    task = next(t for t in tasks if t["task"]["name"] == "a condition that warns")
    result = next(iter(task["hosts"].values()))
    assert result["skipped"] is True
    assert "templating delimiters" in result["deprecations"][0]["msg"]
