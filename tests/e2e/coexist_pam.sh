#!/usr/bin/env bash
# Coexistence with OpenVPN's own auth-pam plugin (openvpn-plugin-auth-pam.so)
# and username-as-common-name: clients log in with a username and password
# checked by PAM (pam_unix against two throwaway system users this script
# creates and removes), and vpnpool keys their addresses by that username.
# Checks: a `client "USERNAME"` reservation applies; a user's address is
# sticky across reconnects and follows the username, not the certificate; a
# wrong password and an unknown user are refused by auth-pam and vpnpool logs
# nothing for them; identity = "common_name" gives the same (OpenVPN has set
# the common name to the username before CLIENT_CONNECT), across a SIGHUP;
# with the plugins in the other order (vpnpool first) and auth-pam deferred
# (setenv deferred_auth_pam 1) all of it holds, SIGHUP included: vpnpool
# hooks no authentication call, so the order does not matter; and all of it
# with OpenVPN running as nobody (user nobody, group nogroup).
. "$(dirname "$0")/lib.sh"
e2e_require
: "${AUTHPAM:=/usr/lib/x86_64-linux-gnu/openvpn/plugins/openvpn-plugin-auth-pam.so}"
[ -f "$AUTHPAM" ] || e2e_skip_or_fail "OpenVPN's auth-pam plugin not found: $AUTHPAM (package openvpn)"
for cmd in useradd userdel chpasswd; do
	command -v "$cmd" >/dev/null || e2e_skip_or_fail "$cmd not installed (package passwd)"
done
compgen -G '/lib/*/security/pam_unix.so' >/dev/null || compgen -G '/usr/lib/*/security/pam_unix.so' >/dev/null ||
	e2e_skip_or_fail "pam_unix.so not found (package libpam-modules)"

# Users and a PAM service named after this run's pid; those of runs that
# were killed (their pid gone) are removed first.
while IFS=: read -r name _; do
	[[ $name =~ ^vpe2e-[abx]([0-9]+)$ ]] || continue
	kill -0 "${BASH_REMATCH[1]}" 2>/dev/null || userdel "$name" 2>/dev/null
done </etc/passwd
for f in /etc/pam.d/vpnpool-e2e-*; do
	[[ $f =~ -([0-9]+)$ ]] || continue
	kill -0 "${BASH_REMATCH[1]}" 2>/dev/null || rm -f "$f"
done
UA=vpe2e-a$$ UB=vpe2e-b$$ UX=vpe2e-x$$ SVC=vpnpool-e2e-$$
PA=$(openssl rand -hex 12) PB=$(openssl rand -hex 12)
USERS=()
pam_cleanup() {
	local u
	for u in "${USERS[@]}"; do userdel "$u" 2>/dev/null; done
	rm -f "/etc/pam.d/$SVC"
}
trap 'pam_cleanup; e2e_cleanup' EXIT
add_user() { # NAME PASSWORD (useradd retries while another run holds /etc/passwd's lock)
	for _ in $(seq 1 50); do
		useradd --system --no-create-home --shell /usr/sbin/nologin "$1" 2>/dev/null && break
		sleep 0.2
	done
	id "$1" >/dev/null 2>&1 || { e2e_fail "useradd $1 failed"; e2e_finish; }
	USERS+=("$1")
	for _ in $(seq 1 50); do
		printf '%s:%s\n' "$1" "$2" | chpasswd 2>/dev/null && return 0
		sleep 0.2
	done
	e2e_fail "chpasswd $1 failed"
	e2e_finish
}
add_user "$UA" "$PA"
add_user "$UB" "$PB"
printf 'auth required pam_unix.so\naccount required pam_unix.so\n' >"/etc/pam.d/$SVC"

# Certificates with CNs other than the usernames: ua and bad use cert-a,
# ub and unk cert-b, bx logs in as B with cert-a.
e2e_pki cert-a cert-b
P=$E2E_DIR/pki
for pair in ua:c0 bad:c0 bx:c0 ub:c1 unk:c1; do
	cp "$P/${pair#*:}.crt" "$P/${pair%:*}.crt"
	cp "$P/${pair#*:}.key" "$P/${pair%:*}.key"
done
pass_file() { printf '%s\n%s\n' "$2" "$3" >"$E2E_DIR/$1.pass"; }
pass_file ua "$UA" "$PA"
pass_file ub "$UB" "$PB"
pass_file bx "$UB" "$PB"
pass_file bad "$UA" "wrong-$PA"
pass_file unk "$UX" "$PA"
client() { e2e_client_start "$1" --auth-user-pass "$E2E_DIR/$1.pass"; }

vpnpool_conf() { # IDENTITY
	e2e_vpnpool_conf "identity = \"$1\"
pool \"users\" {
    network = \"10.8.0.0/24\"
    range   = \"10.8.0.10-10.8.0.19\"
}
client \"$UA\" { address = \"10.8.0.50\" }"
}
AUTHPAM_LINE="plugin $AUTHPAM \"$SVC\""
U=$E2E_DIR/usage.log
# The usage log from line N on.
usage_from() { tail -n "+$1" "$U"; }
usage_lines() { wc -l <"$U"; }

# A wrong password and an unknown user: AUTH_FAILED from auth-pam, nothing
# in vpnpool's usage log.  A good client connects after them, so once its
# connect line is there, anything logged for them would be there too.
refused_by_pam() { # PHASE GOOD-CLIENT LOG-ERE (one line per refusal)
	local mark n
	mark=$(usage_lines)
	n=$(grep -c "event=connect identity=$UB " "$U")
	client bad
	client unk
	e2e_assert_eq "$1: wrong password refused" "$(e2e_client_wait bad)" AUTH_FAILED
	e2e_assert_eq "$1: unknown user refused" "$(e2e_client_wait unk)" AUTH_FAILED
	e2e_assert_eq "$1: OpenVPN's log: auth-pam refused both" \
		"$(e2e_server_log | grep -cE "$3")" 2
	client "$2"
	e2e_assert_eq "$1: a good client after them" "$(e2e_client_wait "$2")" PUSH_REPLY
	e2e_wait_usage $((n + 1)) "event=connect identity=$UB " || e2e_fail "$1: no connect logged for $UB"
	# (B's previous session may end in this window: its disconnect is left out.)
	e2e_assert_eq "$1: vpnpool logged only the good client's connect" \
		"$(usage_from $((mark + 1)) | grep -v " event=disconnect identity=$UB " | cut -d' ' -f2-3 | tr '\n' ' ')" \
		"event=connect identity=$UB "
	e2e_assert_eq "$1: no vpnpool lease for the unknown user" \
		"$(grep -c "identity=$UX" "$U")" 0
}

# ---- phase 1: auth-pam, then vpnpool; identity = "username" -----------------
vpnpool_conf username
e2e_server_conf "topology subnet
server 10.8.0.0 255.255.255.0 nopool
username-as-common-name
$AUTHPAM_LINE
$(e2e_plugin_line)"
e2e_server_start || { e2e_fail "server did not start"; e2e_finish; }
e2e_assert_match "auth-pam loaded" "$(e2e_server_log)" "PLUGIN AUTH-PAM: initialization succeeded"

client ua
client ub
e2e_assert_eq "user A outcome" "$(e2e_client_wait ua)" PUSH_REPLY
e2e_assert_eq "user B outcome" "$(e2e_client_wait ub)" PUSH_REPLY
e2e_assert_eq "user A gets its reservation (client \"$UA\")" "$(e2e_pushed_ifconfig ua)" 10.8.0.50
B=$(e2e_pushed_ifconfig ub)
e2e_assert_match "user B gets a pool address ($B)" "$B" '^10\.8\.0\.1[0-9]$'
e2e_wait_usage 2 ' event=connect ' || e2e_fail "no connects logged"
e2e_assert_match "usage log: A keyed by its username" "$(cat "$U")" \
	"event=connect identity=$UA pool=users address=10\.8\.0\.50 "
e2e_assert_eq "usage log: no certificate CN as identity" "$(grep -c 'identity=cert-' "$U")" 0

# Sticky, and keyed by the username: B reconnects with A's certificate.
e2e_client_stop --wait ub
client bx
e2e_assert_eq "user B with A's certificate outcome" "$(e2e_client_wait bx)" PUSH_REPLY
e2e_assert_eq "user B keeps its address with another certificate" "$(e2e_pushed_ifconfig bx)" "$B"
e2e_client_stop --wait bx
refused_by_pam "auth-pam first" ub \
	"TLS Auth Error: Auth Username/Password verification failed for peer"
e2e_assert_eq "user B sticky across reconnect" "$(e2e_pushed_ifconfig ub)" "$B"

# ---- phase 2: identity = "common_name" (= the username), reloaded by SIGHUP --
vpnpool_conf common_name
mark=$(usage_lines)
e2e_server_hup || { e2e_fail "server did not come back after SIGHUP"; e2e_finish; }
e2e_assert_eq "common_name: user A back after SIGHUP" "$(e2e_client_wait ua 20)" PUSH_REPLY
e2e_assert_eq "common_name: user B back after SIGHUP" "$(e2e_client_wait ub 20)" PUSH_REPLY
e2e_assert_eq "common_name: user A's reservation" "$(e2e_pushed_ifconfig ua)" 10.8.0.50
e2e_assert_eq "common_name: user B's address" "$(e2e_pushed_ifconfig ub)" "$B"
e2e_wait_usage 2 "event=connect identity=$UA " || e2e_fail "no second connect of A"
e2e_wait_usage 4 "event=connect identity=$UB " || e2e_fail "no fourth connect of B"
e2e_assert_eq "common_name: the connects name the usernames" \
	"$(usage_from $((mark + 1)) | grep ' event=connect ' | cut -d' ' -f3 | sort | tr '\n' ' ')" \
	"identity=$UA identity=$UB "
e2e_client_stop ua ub
e2e_server_stop

# ---- phase 3: vpnpool first, auth-pam deferred ---------------------------------
vpnpool_conf username
e2e_server_conf "topology subnet
server 10.8.0.0 255.255.255.0 nopool
username-as-common-name
setenv deferred_auth_pam 1
$(e2e_plugin_line)
$AUTHPAM_LINE"
e2e_server_start || { e2e_fail "server did not start (vpnpool first)"; e2e_finish; }
client ua
e2e_assert_eq "vpnpool first: user A outcome" "$(e2e_client_wait ua)" PUSH_REPLY
e2e_assert_eq "vpnpool first: user A's reservation" "$(e2e_pushed_ifconfig ua)" 10.8.0.50
e2e_assert_match "vpnpool first: auth-pam deferred the check" "$(e2e_server_log)" \
	"PLUGIN AUTH-PAM: BACKGROUND: $UA: deferred auth: PAM succeeded"
refused_by_pam "vpnpool first" ub \
	"PLUGIN AUTH-PAM: BACKGROUND: ($UA|$UX): deferred auth: PAM rejected"
e2e_assert_eq "vpnpool first: user B sticky across restart" "$(e2e_pushed_ifconfig ub)" "$B"
e2e_server_hup || { e2e_fail "server did not come back after SIGHUP (vpnpool first)"; e2e_finish; }
e2e_assert_eq "vpnpool first: user A back after SIGHUP" "$(e2e_client_wait ua 20)" PUSH_REPLY
e2e_assert_eq "vpnpool first: user B back after SIGHUP" "$(e2e_client_wait ub 20)" PUSH_REPLY
e2e_assert_eq "vpnpool first: A's address after SIGHUP" "$(e2e_pushed_ifconfig ua)" 10.8.0.50
e2e_assert_eq "vpnpool first: B's address after SIGHUP" "$(e2e_pushed_ifconfig ub)" "$B"
e2e_client_stop ua ub
e2e_server_stop

# ---- phase 4: as phase 1, OpenVPN running as nobody ----------------------------
# auth-pam's helper and vpnpool's files stay usable after the drop.
e2e_server_conf "topology subnet
server 10.8.0.0 255.255.255.0 nopool
username-as-common-name
user nobody
group nogroup
$AUTHPAM_LINE
$(e2e_plugin_line)"
e2e_server_start || { e2e_fail "server did not start (user nobody)"; e2e_finish; }
e2e_assert_match "user nobody: OpenVPN dropped its privileges" "$(e2e_server_log | grep -F 'UID set to')" "UID set to nobody"
client ua
e2e_assert_eq "user nobody: user A outcome" "$(e2e_client_wait ua)" PUSH_REPLY
e2e_assert_eq "user nobody: user A's reservation" "$(e2e_pushed_ifconfig ua)" 10.8.0.50
refused_by_pam "user nobody" ub \
	"TLS Auth Error: Auth Username/Password verification failed for peer"
e2e_assert_eq "user nobody: user B sticky across restart" "$(e2e_pushed_ifconfig ub)" "$B"
e2e_assert_eq "no plugin error in OpenVPN's logs" \
	"$(cat "$E2E_DIR"/server.*.log | grep -c 'PLUGIN vpnpool: .*\(cannot\|error\|locked\)')" 0
e2e_finish
