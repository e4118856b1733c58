# netns.bash — test hosts for the tests that meet a real Kubernetes API
# server (deploy_k8s_discovery.sh, deploy_hpa.sh). The API server refuses
# loopback addresses in Endpoints and EndpointSlices ("may not be in the
# loopback range"), so those tests need addresses that are not loopback yet
# reach nothing but this machine: a network namespace joined to the host by
# a veth pair, with a private /24 (10.254.X.0/24, X chosen free per test)
# that exists only on that pair. The host end is 10.254.X.1; the namespace
# end carries 10.254.X.11, .12, ... (one per test host). There is no default
# route in the namespace, so traffic from it reaches only the host end and
# its own loopback. Needs root (ip netns); tests skip (77) without it.
#
#   netns_check              exit 77 with the reason when this cannot work here
#   netns_create TAG N       namespace + veth, N addresses inside; sets
#                            NETNS, NETNS_HOST_IP, NETNS_IPS=(...), NETNS_SUBNET
#   netns_exec CMD...        run CMD inside the namespace (exec: same pid)
#   netns_cleanup            kill what runs inside, delete namespace and link;
#                            idempotent, for the caller's EXIT trap
#   netns_kube_start DIR [OPTIONS]  the control plane, API server on the host end
NETNS= NETNS_HOST_IP= NETNS_SUBNET= NETNS_LINK=
NETNS_IPS=()

netns_check() {
    if [ "$(id -u)" != 0 ]; then
        echo "SKIP: needs root for ip netns (test hosts in a network namespace)"; exit 77
    fi
    if ! command -v ip >/dev/null || ! ip netns list >/dev/null 2>&1; then
        echo "SKIP: ip netns is unavailable (iproute2 with network namespaces)"; exit 77
    fi
}

# A /24 in 10.254.0.0/16 that no address or route on this machine uses
# (start from the pid so parallel tests rarely try the same one; the lock
# makes choose-and-claim atomic between them).
netns__free_subnet() {
    local x i used
    used=$(ip -4 -o addr show; ip -4 route show table all)
    for ((i = 0; i < 250; i++)); do
        x=$(( ($$ + i) % 250 + 1 ))
        grep -q "10\.254\.$x\." <<<"$used" || { echo "$x"; return 0; }
    done
    return 1
}

netns_create() { # TAG N
    local tag=$1 n=$2 x i
    exec 8>/run/lock/osprey-netns.lock && flock 8
    x=$(netns__free_subnet) || { flock -u 8; echo "FAIL: no free 10.254.X.0/24"; return 1; }
    NETNS=osp-$tag-$$ NETNS_LINK=osph$$ NETNS_SUBNET=10.254.$x.0/24 NETNS_HOST_IP=10.254.$x.1
    ip netns add "$NETNS" &&
    ip link add "$NETNS_LINK" type veth peer name ospn$$ &&
    ip link set ospn$$ netns "$NETNS" &&
    ip addr add "$NETNS_HOST_IP/24" dev "$NETNS_LINK" &&
    ip link set "$NETNS_LINK" up &&
    ip -n "$NETNS" link set lo up &&
    ip -n "$NETNS" link set ospn$$ up || { flock -u 8; echo "FAIL: cannot create $NETNS"; return 1; }
    NETNS_IPS=()
    for ((i = 0; i < n; i++)); do
        NETNS_IPS+=("10.254.$x.$((11 + i))")
        ip -n "$NETNS" addr add "10.254.$x.$((11 + i))/24" dev ospn$$ ||
            { flock -u 8; echo "FAIL: address"; return 1; }
    done
    flock -u 8
    # Both ends up (the host end reports UP once its peer is; bounded).
    for ((i = 0; i < 50; i++)); do
        ip -br link show "$NETNS_LINK" | grep -qw UP && break
        sleep 0.1
    done
    echo "netns: $NETNS, host end $NETNS_HOST_IP ($NETNS_LINK), inside ${NETNS_IPS[*]}"
}

netns_exec() { ip netns exec "$NETNS" "$@"; }

netns_cleanup() {
    [ -n "$NETNS" ] || return 0
    local p
    # Only processes inside our own namespace: the ones this test started.
    for p in $(ip netns pids "$NETNS" 2>/dev/null); do kill -KILL "$p" 2>/dev/null; done
    ip netns del "$NETNS" 2>/dev/null
    # Deleting the namespace deletes the pair; this covers a half-made one.
    ip link del "$NETNS_LINK" 2>/dev/null
    NETNS=
    return 0
}

# netns_kube_start DIR [OPTIONS] — scripts/kube-test-cluster.sh's control
# plane with the API server on the host end of the pair (so the test hosts
# reach it, and its Endpoints may name them). Needs autoscale_k8s_lib.bash
# sourced first (K8S_CLUSTER, K, k8s_stop); sets K8S_DIR, API_URL, KUBECTL.
netns_kube_start() {
    K8S_DIR=$1; shift
    "$K8S_CLUSTER" start "$K8S_DIR" --address "$NETNS_HOST_IP" "$@"
    local rc=$?
    [ $rc = 77 ] && { echo "SKIP: the test cluster cannot be built here (see above)"; exit 77; }
    [ $rc = 0 ] || { echo "FAIL: the test cluster did not start"; exit 1; }
    . "$K8S_DIR/env"
}
