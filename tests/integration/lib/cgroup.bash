# cgroup.bash — finding the process's own cgroup directory, for the
# integration tests that make cgroups below it (serve_cgroup.sh: CPU
# quotas; serve_memory.sh: memory limits). From /proc/self/mountinfo and
# /proc/self/cgroup, as the worker does (src/common/cpu_budget.c). Mount
# points with escaped characters are not handled. Named .bash so that the
# tests/integration/*.sh glob does not register it as a test.

mount_of() { # fstype [controller]: "root mountpoint" of the first match
    awk -v fs="$1" -v ctl="${2:-}" '{
        for (i = 7; i <= NF; i++) if ($i == "-") break
        if ($(i + 1) != fs) next
        if (ctl != "") { n = split($(i + 3), o, ","); ok = 0
            for (j = 1; j <= n; j++) if (o[j] == ctl) ok = 1
            if (!ok) next }
        print $4, $5; exit }' /proc/self/mountinfo
}
own_path() { # v1 controller, or "" for v2: our cgroup path
    awk -F: -v ctl="$1" '{
        if (ctl == "") { if ($1 == "0" && $2 == "") { print $3; exit } ; next }
        n = split($2, c, ","); for (j = 1; j <= n; j++)
            if (c[j] == ctl) { print $3; exit } }' /proc/self/cgroup
}
join_path() { # mount root mountpoint path -> directory
    local root=$1 mnt=$2 path=$3 rel
    if [ "$root" = / ]; then rel=$path
    elif [ "$path" = "$root" ] || [ "${path#"$root"/}" != "$path" ]; then rel=${path#"$root"}
    else return 1; fi
    [ "$rel" = / ] && rel=
    echo "$mnt$rel"
}


# cgroup_remove DIR... — removes the cgroups, last first (children before
# their parents), each retried for 2 s: a killed process leaves its cgroup
# a moment after wait returns.
cgroup_remove() {
    local i d
    for ((i = $# ; i >= 1; i--)); do
        d=${!i}
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            rmdir "$d" 2>/dev/null && break
            [ -d "$d" ] || break
            sleep 0.2
        done
        [ -d "$d" ] && echo "warning: could not remove cgroup $d"
    done
    return 0
}
