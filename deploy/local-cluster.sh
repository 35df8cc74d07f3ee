#!/usr/bin/env bash
# Runs a three-node Rotor cluster and HAProxy on loopback, for trying out
# failover and for load tests on one machine.
#
#   deploy/local-cluster.sh start [--dir DIR]
#   deploy/local-cluster.sh status [--dir DIR]
#   deploy/local-cluster.sh kill NODE [--dir DIR]        # SIGKILL one node
#   deploy/local-cluster.sh start-node NODE [--dir DIR]  # start it again
#   deploy/local-cluster.sh stop [--dir DIR]
#
# NODE is 1, 2 or 3 (or node-1 ... node-3). DIR defaults to ./rotor-cluster
# and contains the binary, the cluster secret, each node's data directory, the
# logs and the pid files. Needs go, haproxy and curl.
set -euo pipefail

# Ports: node-N listens on HTTP_BASE+N, RAFT_BASE+N and GOSSIP_BASE+N.
readonly LB_PORT=8000
readonly STATS_PORT=8404
readonly HTTP_BASE=8100
readonly RAFT_BASE=8200
readonly GOSSIP_BASE=8300
readonly LB_URL="http://127.0.0.1:$LB_PORT"
readonly STATS_URL="http://127.0.0.1:$STATS_PORT/"
readonly NODES=(1 2 3)
readonly START_TIMEOUT=30 # seconds to wait for readiness
readonly STOP_TIMEOUT=15  # seconds to wait for a process to exit after SIGTERM

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
readonly script_dir
readonly repo_root="${script_dir%/*}"
readonly haproxy_cfg="$script_dir/haproxy.cfg"

usage() {
	cat <<EOF
Usage: $0 COMMAND [NODE] [--dir DIR]

Commands:
  start           build rotor, start node-1..3 and HAProxy, wait until ready
  stop            send SIGTERM to HAProxy and every node and wait for them
  status          print each node's GET /v1/cluster and HAProxy's state
  kill NODE       send SIGKILL to one node (1, 2 or 3) to try failover
  start-node NODE start one node again with the same flags

Addresses: HAProxy $LB_URL (stats page $STATS_URL), node-N HTTP
127.0.0.1:$((HTTP_BASE / 10))N, Raft 127.0.0.1:$((RAFT_BASE / 10))N, gossip 127.0.0.1:$((GOSSIP_BASE / 10))N.
DIR defaults to ./rotor-cluster.
EOF
}

die() {
	echo "local-cluster: $*" >&2
	exit 1
}

say() {
	echo "local-cluster: $*"
}

http_addr() { echo "127.0.0.1:$((HTTP_BASE + $1))"; }
raft_addr() { echo "127.0.0.1:$((RAFT_BASE + $1))"; }
gossip_addr() { echo "127.0.0.1:$((GOSSIP_BASE + $1))"; }

# join_addrs N prints the gossip addresses of the other two nodes, comma-separated.
join_addrs() {
	local n=$1 other addrs=()
	for other in "${NODES[@]}"; do
		if [[ $other != "$n" ]]; then
			addrs+=("$(gossip_addr "$other")")
		fi
	done
	local IFS=,
	echo "${addrs[*]}"
}

# is_alive PID succeeds while the process exists and is not a zombie.
is_alive() {
	local state
	kill -0 "$1" 2>/dev/null || return 1
	state=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
	[[ $state != Z* ]]
}

# running_pid FILE PATTERN prints the pid stored in FILE if that process is
# alive and its command line contains PATTERN, which guards against a pid
# that the system has since given to another program.
running_pid() {
	local file=$1 pattern=$2 pid args
	[[ -f $file ]] || return 1
	pid=$(<"$file")
	[[ $pid =~ ^[0-9]+$ ]] || return 1
	is_alive "$pid" || return 1
	args=$(ps -o args= -p "$pid" 2>/dev/null) || return 1
	[[ $args == *"$pattern"* ]] || return 1
	echo "$pid"
}

node_pid() { running_pid "$dir/node-$1.pid" "$dir/rotor"; }
haproxy_pid() { running_pid "$dir/haproxy.pid" "haproxy"; }

# http_status URL prints the HTTP status of a GET, or 000 when nothing responds.
http_status() {
	curl -s -o /dev/null -m 2 -w '%{http_code}' "$1" || true
}

# wait_ready URL PID NAME LOG waits until URL returns 200. It gives up after
# START_TIMEOUT seconds or when the process PID exits, and then prints the
# end of LOG.
wait_ready() {
	local url=$1 pid=$2 name=$3 log=$4
	local deadline=$((SECONDS + START_TIMEOUT))
	until [[ $(http_status "$url") == 200 ]]; do
		if ! is_alive "$pid"; then
			echo "local-cluster: $name exited; last lines of $log:" >&2
			tail -n 20 "$log" >&2
			return 1
		fi
		if ((SECONDS >= deadline)); then
			echo "local-cluster: $url did not return 200 within ${START_TIMEOUT}s; last lines of $log:" >&2
			tail -n 20 "$log" >&2
			return 1
		fi
		sleep 0.5
	done
}

# wait_gone SECONDS PID... waits until every process has exited and fails
# if one is still alive after SECONDS.
wait_gone() {
	local deadline=$((SECONDS + $1)) pid
	shift
	for pid in "$@"; do
		while is_alive "$pid"; do
			if ((SECONDS >= deadline)); then
				return 1
			fi
			sleep 0.2
		done
	done
}

require() {
	command -v "$1" >/dev/null 2>&1 || die "$1 not found; $2"
}

build() {
	require go "install Go to build rotor"
	say "building $dir/rotor from $repo_root/cmd/node"
	(cd "$repo_root" && go build -o "$dir/rotor" ./cmd/node)
	local help
	help=$("$dir/rotor" -h 2>&1 || true) # -h exits with status 2
	if [[ $help != *-bootstrap-expect* ]]; then
		die "$dir/rotor has no --bootstrap-expect flag; this version of rotor cannot form a cluster"
	fi
}

# ensure_secret creates DIR/cluster-secret (64 hex digits, mode 600) if it is
# missing. All three nodes must share it, and a restart must reuse it, or
# every issued token turns invalid.
ensure_secret() {
	local file="$dir/cluster-secret"
	if [[ ! -f $file ]]; then
		(
			umask 077
			od -An -vtx1 -N32 /dev/urandom | tr -d ' \n' >"$file"
		)
		say "generated a new cluster secret in $file"
	fi
	local secret
	secret=$(<"$file")
	((${#secret} >= 32)) || die "$file contains ${#secret} bytes; the cluster secret must be at least 32 bytes"
}

# start_node N starts node-N in the background with its log and pid file in DIR.
start_node() {
	local n=$1 name="node-$1" pid
	if pid=$(node_pid "$n"); then
		die "$name is already running (pid $pid)"
	fi
	[[ -x $dir/rotor ]] || die "$dir/rotor not found; run '$0 start --dir $dir' first"
	mkdir -p "$dir/$name"
	echo "--- $(date -u +%Y-%m-%dT%H:%M:%SZ) starting $name ---" >>"$dir/$name.log"

	# The secret goes through the environment, never a flag, so it does not
	# show in process listings. Every node signs tokens with the same issuer,
	# the URL that clients use: the load balancer's.
	ROTOR_CLUSTER_SECRET=$(<"$dir/cluster-secret") nohup "$dir/rotor" \
		--node-id "$name" \
		--http-addr "$(http_addr "$n")" \
		--raft-addr "$(raft_addr "$n")" \
		--gossip-addr "$(gossip_addr "$n")" \
		--data-dir "$dir/$name" \
		--bootstrap-expect 3 \
		--join "$(join_addrs "$n")" \
		--issuer "$LB_URL" \
		</dev/null >>"$dir/$name.log" 2>&1 &
	echo $! >"$dir/$name.pid"
	say "started $name (pid $!) on http://$(http_addr "$n"), log $dir/$name.log"
}

start_haproxy() {
	local pid
	if pid=$(haproxy_pid); then
		die "haproxy is already running (pid $pid)"
	fi
	haproxy -c -q -f "$haproxy_cfg" || die "haproxy -c rejected $haproxy_cfg"
	echo "--- $(date -u +%Y-%m-%dT%H:%M:%SZ) starting haproxy ---" >>"$dir/haproxy.log"
	# Foreground mode (-db) in the background, because in daemon mode (-D)
	# HAProxy sends its standard error, and with it the log, to /dev/null.
	# For the same reason -p writes no pid file, so the script writes it.
	# The addresses are passed explicitly, so variables left in the caller's
	# environment cannot move HAProxy away from the URLs printed here.
	ROTOR_LB_BIND="127.0.0.1:$LB_PORT" \
		ROTOR_LB_STATS_BIND="127.0.0.1:$STATS_PORT" \
		ROTOR_NODE_1="$(http_addr 1)" \
		ROTOR_NODE_2="$(http_addr 2)" \
		ROTOR_NODE_3="$(http_addr 3)" \
		nohup haproxy -db -f "$haproxy_cfg" </dev/null >>"$dir/haproxy.log" 2>&1 &
	echo $! >"$dir/haproxy.pid"
	say "started haproxy (pid $!) on $LB_URL, log $dir/haproxy.log"
}

cmd_start() {
	local n pid
	require haproxy "install it, for example with 'apt-get install haproxy'"
	require curl "install it, for example with 'apt-get install curl'"
	for n in "${NODES[@]}"; do
		if pid=$(node_pid "$n"); then
			die "node-$n is already running (pid $pid); run '$0 stop --dir $dir' first"
		fi
	done
	mkdir -p "$dir"
	build
	ensure_secret
	for n in "${NODES[@]}"; do
		start_node "$n"
	done
	start_haproxy

	say "waiting up to ${START_TIMEOUT}s for $LB_URL/readyz"
	if ! wait_ready "$LB_URL/readyz" "$(<"$dir/haproxy.pid")" haproxy "$dir/haproxy.log"; then
		for n in "${NODES[@]}"; do
			echo "--- last lines of $dir/node-$n.log" >&2
			tail -n 10 "$dir/node-$n.log" >&2
		done
		die "the cluster did not become ready; stop it with '$0 stop --dir $dir'"
	fi

	cat <<EOF

Rotor cluster is ready.
  load balancer  $LB_URL
  HAProxy stats  $STATS_URL
  node-1         http://$(http_addr 1)
  node-2         http://$(http_addr 2)
  node-3         http://$(http_addr 3)
  files          $dir

Try:
  curl -s --json '{"username":"alice","password":"correct horse"}' $LB_URL/v1/users
  $0 status --dir $dir
  $0 kill 1 --dir $dir && $0 start-node 1 --dir $dir
  go run ./jepsen load --target $LB_URL --nodes http://$(http_addr 1),http://$(http_addr 2),http://$(http_addr 3) --workload revoke
  $0 stop --dir $dir
EOF
}

cmd_stop() {
	local n pid pids=() names=()
	# HAProxy first, so no new requests reach nodes that are shutting down.
	if pid=$(haproxy_pid); then
		kill -TERM "$pid"
		pids+=("$pid")
		names+=("haproxy")
	fi
	for n in "${NODES[@]}"; do
		if pid=$(node_pid "$n"); then
			kill -TERM "$pid"
			pids+=("$pid")
			names+=("node-$n")
		fi
	done
	if ((${#pids[@]} == 0)); then
		say "nothing running in $dir"
	else
		say "sent SIGTERM to ${names[*]}; waiting up to ${STOP_TIMEOUT}s"
		if ! wait_gone "$STOP_TIMEOUT" "${pids[@]}"; then
			die "a process is still running ${STOP_TIMEOUT}s after SIGTERM; see '$0 status --dir $dir'"
		fi
		say "stopped ${names[*]}"
	fi
	rm -f "$dir/haproxy.pid" "$dir"/node-*.pid
}

cmd_status() {
	local n pid url
	require curl "install it, for example with 'apt-get install curl'"
	if pid=$(haproxy_pid); then
		echo "haproxy: running (pid $pid), $LB_URL/readyz returns $(http_status "$LB_URL/readyz")"
	else
		echo "haproxy: not running"
	fi
	for n in "${NODES[@]}"; do
		url="http://$(http_addr "$n")"
		if pid=$(node_pid "$n"); then
			echo "node-$n: running (pid $pid), $url/readyz returns $(http_status "$url/readyz")"
			echo "  $(curl -s -m 2 "$url/v1/cluster" || echo "GET $url/v1/cluster failed")"
		else
			echo "node-$n: not running"
		fi
	done
}

cmd_kill() {
	local n=$1 pid
	pid=$(node_pid "$n") || die "node-$n is not running"
	kill -KILL "$pid"
	wait_gone 5 "$pid" || die "node-$n (pid $pid) still exists 5s after SIGKILL"
	rm -f "$dir/node-$n.pid"
	say "killed node-$n (pid $pid); HAProxy marks it down at the first refused connection"
	say "start it again with '$0 start-node $n --dir $dir'"
}

cmd_start_node() {
	local n=$1
	require curl "install it, for example with 'apt-get install curl'"
	start_node "$n"
	wait_ready "http://$(http_addr "$n")/readyz" "$(<"$dir/node-$n.pid")" "node-$n" "$dir/node-$n.log" ||
		die "node-$n did not become ready"
	say "node-$n is ready; HAProxy sends it requests again after two passed checks, about 1s"
}

# parse_node prints the number of a NODE argument: 1, 2, 3 or node-1 ... node-3.
parse_node() {
	local n=${1#node-}
	[[ $n =~ ^[123]$ ]] || die "unknown node '$1'; use 1, 2 or 3"
	echo "$n"
}

main() {
	local command="" node="" dir_arg="./rotor-cluster"
	while (($# > 0)); do
		case $1 in
		-h | --help | help)
			usage
			return 0
			;;
		--dir)
			(($# >= 2)) || die "--dir needs a directory"
			dir_arg=$2
			shift 2
			;;
		--dir=*)
			dir_arg=${1#--dir=}
			shift
			;;
		-*)
			die "unknown option '$1'; see '$0 --help'"
			;;
		*)
			if [[ -z $command ]]; then
				command=$1
			elif [[ -z $node ]]; then
				node=$1
			else
				die "unexpected argument '$1'; see '$0 --help'"
			fi
			shift
			;;
		esac
	done
	[[ -n $command ]] || {
		usage >&2
		exit 2
	}
	[[ -n $dir_arg ]] || die "--dir must not be empty"

	if [[ $command == start ]]; then
		mkdir -p "$dir_arg"
	fi
	[[ -d $dir_arg ]] || die "$dir_arg does not exist; start a cluster with '$0 start --dir $dir_arg'"
	# An absolute path, so pid files and logs stay valid from any directory.
	dir=$(cd "$dir_arg" && pwd)

	case $command in
	start | stop | status)
		[[ -z $node ]] || die "'$command' takes no NODE argument"
		"cmd_$command"
		;;
	kill)
		[[ -n $node ]] || die "kill needs a NODE: 1, 2 or 3"
		node=$(parse_node "$node")
		cmd_kill "$node"
		;;
	start-node)
		[[ -n $node ]] || die "start-node needs a NODE: 1, 2 or 3"
		node=$(parse_node "$node")
		cmd_start_node "$node"
		;;
	*)
		die "unknown command '$command'; see '$0 --help'"
		;;
	esac
}

main "$@"
