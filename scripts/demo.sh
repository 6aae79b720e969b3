#!/usr/bin/env bash
# The demo: installs what is missing, builds, starts a real OpenVPN server
# with the plugin on 127.0.0.1 (its own scratch folder and certificates),
# connects clients (two of them routers, one past the pool's end), shows what
# each got or that it was refused, prints the usage log, and cleans up.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD

[ "$(id -u)" -eq 0 ] || { echo "demo: run as root (OpenVPN needs a tun device)" >&2; exit 1; }
bash scripts/deps.sh
[ -x configure ] || autoreconf -fi >/dev/null 2>&1
mkdir -p build
(cd build && { [ -f Makefile ] || "$top/configure" -q; } && make -s -j"$(nproc)") >/dev/null

cd build
export PLUGIN=$PWD/.libs/openvpn-plugin-vpnpool.so
. "$top/tests/e2e/lib.sh"
set +e
E2E_NAME=demo
e2e_log() { :; }
e2e_require

echo "== certificates: laptop-1..3, site-paris and site-lyon (routers)"
names=(laptop-1 laptop-2 laptop-3 site-paris site-lyon)
e2e_pki "${names[@]}"
e2e_vpnpool_conf '
hold-time = 0
warn-at   = {75}
pool "laptops" {
    network = "10.8.0.0/24"
    range   = "10.8.0.10-10.8.0.13"     # four addresses: the fifth client is refused
}
router-pool "sites" {
    network = "10.9.0.0/16"
    prefix  = 24
    match   = {"common_name=site-*"}
}
client "site-paris" { subnet = "10.9.77.0/24" }'
e2e_server_conf "topology subnet
server 10.8.0.0 255.255.0.0 nopool
route 10.9.0.0 255.255.0.0
$(e2e_plugin_line)"
echo "== vpnpool.conf"
sed 's/^/    /' "$E2E_DIR/vpnpool.conf"
echo "== starting openvpn (dev tun, udp 127.0.0.1:$E2E_PORT) with the plugin"
e2e_server_start || { e2e_server_log | tail -n 20; exit 1; }

for n in 0 1 3 4; do e2e_client_start $n; done
for n in 0 1 3 4; do e2e_client_wait $n >/dev/null; done
e2e_client_start 2	# the fifth client: past the pool's end
e2e_client_wait 2 >/dev/null
echo "== what each client received (PUSH_REPLY)"
for n in 0 1 2 3 4; do
	name=${names[$n]}
	case $(e2e_client_wait $n) in
	PUSH_REPLY) printf '    %-11s ifconfig %-26s %s\n' "$name" "$(e2e_pushed_ifconfig_full $n)" \
		"$(e2e_push_reply $n | tr ',' '\n' | grep '^route ' | tr '\n' ' ')" ;;
	*) printf '    %-11s REFUSED (%s)\n' "$name" "$(grep -o 'AUTH_FAILED[^ ]*' "$(e2e_client_log "$n")" | head -n 1)" ;;
	esac
done
echo "== OpenVPN's log: what the plugin said, and the routes it learnt"
e2e_server_log | grep -E 'PLUGIN vpnpool|MULTI: Learn: 10\.9\.' | sed 's/^[0-9-]* [0-9:]* us=[0-9]* /    /'
echo "== laptop-2 disconnects; laptop-3 tries again and gets the freed address"
e2e_client_stop 1
e2e_wait_usage 1 'event=disconnect identity=laptop-2 ' || true
e2e_client_start 2
e2e_client_wait 2 >/dev/null
printf '    laptop-3    ifconfig %s\n' "$(e2e_pushed_ifconfig_full 2)"
vp() { ./vpnpool -c "$E2E_DIR/vpnpool.conf" "$@" | sed 's/^/    /'; }
echo "== vpnpool status (read from the state while OpenVPN runs)"
vp status
echo "== vpnpool leases"
vp leases
for n in 0 2 3 4; do e2e_client_stop $n; done
e2e_server_stop
echo "== the usage log ($E2E_DIR/usage.log)"
sed 's/^/    /' "$E2E_DIR/usage.log"
echo "== vpnpool usage (the same log, summed up per identity)"
vp usage
echo "== done; scratch folder removed"
