# Roost. Two commands set everything up and prove it works (as root, Debian 12):
#   make lab    install tools, build the image, start the lab hosts, deploy site.yml
#   make test   lint, Python tests, preflight and lab checks, Molecule, the ssh lab test
# Lab size: make lab BROKERS=3 LBS=1 PIS=20. Debian release: make lab LAB_RELEASE=13.
# armhf Pis under qemu (lab/README.md): make lab LAB_NAME=roost-armhf LAB_PI_ARCH=armhf.

SHELL := /bin/bash
.DEFAULT_GOAL := help
export PATH := $(CURDIR)/.venv/bin:$(PATH)
export BROKERS ?= 3
export LBS ?= 1
export PIS ?= 3
export LAB_RELEASE ?= 12
export LAB_NAME ?= roost-lab
# Each lab has its own inventory (make lab-down removes it): roost-lab's is inventory/lab,
# another LAB_NAME's inventory/lab-<name>.
export LAB_INVENTORY ?= $(CURDIR)/inventory/$(if $(filter roost-lab,$(LAB_NAME)),lab,lab-$(LAB_NAME))

PLAYBOOK := ansible-playbook

.PHONY: help deps venv dockerd image lab lab-hosts lab-deploy lab-down lab-ssh-test \
	test lint lint-python lint-ansible pytest preflight-test pki-test lab-selftest molecule verify timings

help:
	@echo "make lab        bring up the local lab (BROKERS=$(BROKERS) LBS=$(LBS) PIS=$(PIS)) and deploy site.yml"
	@echo "make lab-down   remove the lab hosts and network"
	@echo "make test       lint + pytest (python/) + molecule test (molecule/default) + lab-ssh-test"
	@echo "make verify     molecule/default's testinfra suite against INVENTORY (default: the lab)"
	@echo "make lab-ssh-test  site.yml over ssh as pi with sudo (Mitogen) on a lab of its own; re-run must change nothing"
	@echo "make timings N=3  issue #7's converge, re-run and add-a-Pi times on a lab of 3 brokers, 1 LB, N Pis"
	@echo "make image      build the lab's systemd Debian $(LAB_RELEASE) image (cached by recipe)"
	@echo "make scale      issue #8's scale run: 3 brokers, 1 LB, 20 Pis and 5,000 simulated devices"

deps:
	@bash lab/deps.sh

venv: deps
	@bash lab/venv.sh

dockerd: deps
	@bash lab/dockerd.sh

image: dockerd
	@bash lab/image.sh
	@if [ "$${LAB_CONNECTION:-docker}" = ssh ]; then bash lab/image-ssh.sh; fi

lab: venv image lab-hosts lab-deploy

lab-hosts: image
	@bash lab/up.sh
	@bash lab/inventory.sh

lab-deploy: venv
	$(PLAYBOOK) -i $(LAB_INVENTORY) site.yml

lab-down:
	@if docker info >/dev/null 2>&1; then bash lab/down.sh; else echo "lab: no docker engine, nothing to remove"; fi

test: lint pytest preflight-test pki-test lab-selftest molecule lab-ssh-test

lint: lint-python lint-ansible

lint-python: venv
	cd python && ruff check . && mypy
	ruff check --config python/pyproject.toml molecule
	mypy --config-file python/pyproject.toml molecule/default/tests
	ruff check --config python/pyproject.toml lab/chaos lab/tests
	cd lab && mypy --config-file ../python/pyproject.toml chaos tests
	ruff check --config python/pyproject.toml lab/scale
	cd lab && MYPYPATH=../bench mypy --config-file ../python/pyproject.toml scale
	ruff check --config python/pyproject.toml plugins roles/common/library
	mypy --config-file python/pyproject.toml plugins roles/common/library

lint-ansible: venv
	yamllint --strict .
	ansible-lint

# pytest exits 5 when it collects no test: not a failure while suites are being written.
pytest: venv
	cd python && { pytest -q; rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 5 ]; }
	cd lab && pytest -q -p no:cacheprovider tests
	cd plugins && pytest -q -p no:cacheprovider tests

# The preflight play against good and bad inventories of local hosts.
preflight-test: venv
	bash tests/preflight/run.sh

# playbooks/pki.yml on the controller itself: numbers as extra vars (-e pki_renew_days=400),
# a re-run changes nothing, a value that is not a whole number is refused (~2 min).
pki-test: venv
	bash tests/pki/run.sh

# make lab's answers to bad input: network or port taken, debootstrap or dockerd failing.
lab-selftest: image
	bash lab/selftest.sh

molecule: venv image
	molecule test -s default

# Molecule's testinfra suite against any inventory: make verify INVENTORY=inventory/<name>.
# Each test module picks its hosts by group (testinfra_hosts), as under Molecule, which
# passes the same --connection and --ansible-inventory. tests/verify.cfg: the checks run
# through sudo on hosts whose inventory sets no ansible_become (a fleet's, an ssh lab's).
INVENTORY ?= $(LAB_INVENTORY)
verify: venv
	@[ -e "$(INVENTORY)" ] || { echo "make verify: no inventory $(INVENTORY) (make verify INVENTORY=inventory/<name>)"; exit 2; }
	ANSIBLE_CONFIG=$(CURDIR)/tests/verify.cfg pytest -p no:cacheprovider --connection=ansible --ansible-inventory=$(INVENTORY) molecule/default/tests

# Issue #7's timings on their own lab (LAB_NAME, default roost-timings; removed afterwards
# unless KEEP=1): first converge, re-run, adding one Pi. Not part of make test (minutes).
N ?= 3
TIMINGS_LAB := $(if $(filter file,$(origin LAB_NAME)),roost-timings,$(LAB_NAME))
timings: venv image
	env -u LAB_INVENTORY LAB_NAME=$(TIMINGS_LAB) N=$(N) bash lab/timings.sh

# A fleet's connection path (ssh as pi, become through sudo, Mitogen) end to end on its own
# lab (roost-sshtest: 1 broker, 1 LB, 1 Pi, removed on exit): first converge, a re-run
# that must report changed=0 on every host, drift on pi-1 put back, a missing ca.crt on
# pi-1 stopping the agent play (lab/ssh-test.sh). The last step of make test (~2-5 min).
lab-ssh-test: venv image
	env -u LAB_INVENTORY LAB_NAME=roost-sshtest LAB_CONNECTION=ssh bash lab/ssh-test.sh

# Issue #8's scale run on its own lab (roost-scale; not part of make test, ~15 min plus the
# deploy): 3 brokers, 1 LB, SCALE_PIS Pis, 5,000 simulated devices with mutual TLS through
# HAProxy (SCALE_ARGS: python -m scale --help); results in lab/results/scale-<stamp>.txt
# and .json. make scale-lab only starts and deploys the lab (lab/scale/vars.yml: the
# probe's ACL), make scale-run only measures it, make scale-down removes it.
SCALE_LAB := $(if $(filter file,$(origin LAB_NAME)),roost-scale,$(LAB_NAME))
SCALE_INVENTORY := $(CURDIR)/inventory/lab-$(SCALE_LAB)
SCALE_PIS ?= 20
SCALE_PORT ?= 28883
SCALE_ARGS ?=
.PHONY: scale scale-lab scale-run scale-down
scale: scale-lab scale-run

scale-lab: venv image
	env LAB_NAME=$(SCALE_LAB) LAB_INVENTORY=$(SCALE_INVENTORY) BROKERS=3 LBS=1 PIS=$(SCALE_PIS) \
		LAB_PORT=$(SCALE_PORT) bash -c 'bash lab/up.sh && bash lab/inventory.sh'
	$(PLAYBOOK) -i $(SCALE_INVENTORY) site.yml -e @lab/scale/vars.yml

scale-run: venv
	cd lab && python -m scale --lab $(SCALE_LAB) --inventory $(SCALE_INVENTORY) $(SCALE_ARGS)

scale-down:
	env LAB_NAME=$(SCALE_LAB) LAB_INVENTORY=$(SCALE_INVENTORY) bash lab/down.sh

# Issue #8's chaos run on a running lab (LAB_NAME as for make lab; e.g. make lab
# LAB_NAME=roost-chaos first). Deploys lab/chaos/vars.yml (the checker's ACL, a sample
# every 0.5 s, a small queue on one Pi), then injects one fault at a time (~15 min); results
# in lab/results/chaos-<stamp>.txt/.json. Not part of make test. CHAOS_ARGS: see --help.
.PHONY: chaos
chaos: venv
	$(PLAYBOOK) -i $(LAB_INVENTORY) playbooks/preflight.yml playbooks/broker.yml \
		playbooks/agent.yml -e @lab/chaos/vars.yml
	cd lab && python -m chaos --lab $(LAB_NAME) --inventory $(abspath $(LAB_INVENTORY)) $(CHAOS_ARGS)
