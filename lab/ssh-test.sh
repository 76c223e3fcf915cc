#!/usr/bin/env bash
# make lab-ssh-test: a fleet's connection path end to end, on a lab of its own
# (roost-sshtest: 1 broker, 1 load balancer, 1 Pi, LAB_CONNECTION=ssh), removed on exit
# whatever happens:
#   hosts up     image-ssh.sh's image, the lab's key pair and known_hosts, the inventory
#   converge     ansible-playbook site.yml over ssh as pi, become through sudo, under
#                ansible.cfg's strategy (Mitogen): must end failed=0 unreachable=0
#   re-run       the same: must report changed=0 on every host
#   checked      each host's journal: sshd accepted pi's key, and sudo ran Python as root
#                for pi directly (Mitogen's bootstrap; stock Ansible's become runs
#                /bin/sh -c 'echo BECOME-SUCCESS-...; python3' instead)
#   drift        the agent's shell, /var/lib/roost's mode, a line in agent.toml and the
#                agent stopped on pi-1: a run --limit pi-1 must put all four back
#   missing      pi-1's ca.crt moved aside: playbooks/agent.yml --limit pi-1 must fail
#                with the agent role's sentence naming the file, change nothing, and leave
#                agent.toml and the running agent as they were; then ca.crt goes back
# Every step is bounded by a timeout; wall times go to stderr, logs to LAB_DIR.
LAB_NAME=${LAB_NAME:-roost-sshtest}
LAB_CONNECTION=ssh
. "$(dirname "$0")/lib.sh"
need_root

LAB_PORT=${LAB_PORT:-$(free_port)}
export LAB_NAME LAB_CONNECTION LAB_INVENTORY LAB_PORT BROKERS=1 LBS=1 PIS=1
export PATH=$ROOT/.venv/bin:$PATH ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
logs=$LAB_DIR/ssh-test-$(date -u +%Y%m%d-%H%M%S)
mkdir -p "$logs"
cd "$ROOT"

trap 'bash "$ROOT/lab/down.sh"' EXIT
# A lab of this name left by a run that was killed goes first: fresh hosts every time.
bash lab/down.sh

# step KEY LABEL LIMIT_SECONDS CMD...: CMD with its output in $logs/KEY.log, bounded.
step() {
  local key=$1 label=$2 limit=$3 start=$SECONDS rc=0
  shift 3
  timeout --kill-after=30 "$limit" "$@" >"$logs/$key.log" 2>&1 || rc=$?
  log "ssh-test: $label: $((SECONDS - start)) s"
  [ "$rc" -eq 0 ] || die "ssh-test: $label failed (exit $rc, limit $limit s): see $logs/$key.log"
}
# recap KEY: the PLAY RECAP lines of a step's log.
recap() { sed -n '/^PLAY RECAP/,$p' "$logs/$1.log" | grep ' changed='; }

step image "ssh image" 300 bash lab/image-ssh.sh
step hosts "hosts up (3 containers)" 300 bash -c 'lab/up.sh && lab/inventory.sh'
step converge "first converge" 1800 ansible-playbook -i "$LAB_INVENTORY" site.yml
recap converge >&2
bad=$(recap converge | grep -Ev ' unreachable=0 +failed=0 ' || true)
[ -z "$bad" ] || die "ssh-test: first converge: $bad"
step rerun "re-run" 900 ansible-playbook -i "$LAB_INVENTORY" site.yml
recap rerun >&2
changed=$(changed_hosts "$logs/rerun.log")
[ -n "$(recap rerun)" ] || die "ssh-test: re-run printed no PLAY RECAP: see $logs/rerun.log"
[ -z "$changed" ] || die "ssh-test: re-run changed something: $changed"

# The hosts' side of it: a key login as pi, and sudo running Python as root for pi.
# (The journal is read whole first: grep -q at the end of a pipe would stop reading at
# the first match, and journalctl's SIGPIPE fail the pipe under pipefail.)
for c in $(docker ps --filter "label=$LAB_LABEL=1" --filter "network=$LAB_NAME" --format '{{.Names}}'); do
  journal=$(docker exec "$c" journalctl -q --no-pager _COMM=sshd _COMM=sudo)
  grep -q 'Accepted publickey for pi ' <<<"$journal" ||
    die "ssh-test: ${c#"$LAB_NAME"-}: no key login as pi in sshd's journal"
  grep -q 'pi : .*USER=root ; COMMAND=/usr/bin/python3' <<<"$journal" ||
    die "ssh-test: ${c#"$LAB_NAME"-}: no sudo to root by pi running Python (Mitogen) in the journal"
done
# Drift on the Pi in what the roles read once (roost_host_state) and then skip when it
# is as they left it: the next run must still put each back.
pi=$LAB_NAME-pi-1
docker exec "$pi" sh -c 'usermod -s /bin/sh roost-agent && chmod 0700 /var/lib/roost &&
  echo "# drift" >> /etc/roost/agent.toml && systemctl stop roost-agent' ||
  die "ssh-test: could not change pi-1's state"
step drift "run after drift on pi-1" 900 ansible-playbook -i "$LAB_INVENTORY" site.yml --limit pi-1
state=$(docker exec "$pi" sh -c 'getent passwd roost-agent | cut -d: -f7; stat -c %a /var/lib/roost
  grep -c "^# drift" /etc/roost/agent.toml || true; systemctl is-active roost-agent || true')
[ "$state" = "$(printf '/usr/sbin/nologin\n750\n0\nactive')" ] ||
  die "ssh-test: the run after drift left pi-1 with: $(tr '\n' ' ' <<<"$state") (want /usr/sbin/nologin 750 0 active)"

# A TLS file the agent needs missing on the Pi (pki_dir's default, as the lab's pki play
# left it): the run must stop before the agent's tasks with the sentence that says what
# to do. Written out here because step dies on the non-zero exit this one wants.
ca=/etc/roost/tls/ca.crt
toml=$(docker exec "$pi" sha1sum /etc/roost/agent.toml) ||
  die "ssh-test: pi-1 has no /etc/roost/agent.toml to compare"
docker exec "$pi" mv "$ca" "$ca.aside" || die "ssh-test: could not move pi-1's $ca aside"
start=$SECONDS rc=0
timeout --kill-after=30 600 ansible-playbook -i "$LAB_INVENTORY" playbooks/agent.yml --limit pi-1 \
  >"$logs/missing.log" 2>&1 || rc=$?
log "ssh-test: run without pi-1's ca.crt: $((SECONDS - start)) s (exit $rc)"
docker exec "$pi" mv "$ca.aside" "$ca" || die "ssh-test: could not put pi-1's $ca back"
# 124 and 137: timeout's; the rest of a failed play is 2.
[ "$rc" -ne 0 ] || die "ssh-test: the run without pi-1's $ca succeeded: see $logs/missing.log"
[ "$rc" -ne 124 ] && [ "$rc" -ne 137 ] ||
  die "ssh-test: the run without pi-1's $ca timed out (limit 600 s): see $logs/missing.log"
# The yaml callback wraps long messages: compare with the whitespace squeezed.
said=$(tr -s ' \n' '  ' <"$logs/missing.log")
for want in "pi-1 lacks $ca:" "Run playbooks/pki.yml (site.yml does) before playbooks/agent.yml"; do
  grep -qF -- "$want" <<<"$said" ||
    die "ssh-test: the run without pi-1's $ca did not say \"$want\": see $logs/missing.log"
done
changed=$(changed_hosts "$logs/missing.log")
[ -z "$changed" ] || die "ssh-test: the run without pi-1's $ca changed something: $changed"
state=$(docker exec "$pi" sh -c 'sha1sum /etc/roost/agent.toml; systemctl is-active roost-agent || true')
[ "$state" = "$(printf '%s\nactive' "$toml")" ] ||
  die "ssh-test: the run without pi-1's $ca left: $(tr '\n' ' ' <<<"$state") (want $toml, active)"
log "ssh-test: passed: converge and re-run over ssh as pi with sudo, changed=0 on every host; drift on pi-1 repaired; a missing $ca stopped the agent play with its sentence, agent untouched (logs: $logs)"
