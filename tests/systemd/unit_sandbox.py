#!/usr/bin/python3
# Runs a command under the seccomp-based directives of a systemd unit, set up the way systemd
# sets them up, for a machine where systemd is not PID 1 (and so cannot run the unit itself):
#   SystemCallFilter= (an allow list, then "~" lists taken out; groups expanded by
#   `systemd-analyze syscall-filter`), SystemCallErrorNumber=, RestrictAddressFamilies=,
#   MemoryDenyWriteExecute= (the kernel's PR_SET_MDWE refuses the same mappings: writable and
#   executable at once, or made executable later) and NoNewPrivileges=.
# Usage: unit_sandbox.py UNIT COMMAND [ARGS...]   (user and capabilities: setpriv, outside)
import ctypes
import errno
import os
import socket
import subprocess
import sys

import seccomp  # Debian: python3-seccomp


def unit_settings(path):
    settings = {}
    section = None
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                section = line
            elif section == "[Service]" and "=" in line and not line.startswith("#"):
                key, value = line.split("=", 1)
                settings.setdefault(key, []).append(value)
    return settings


def syscall_groups():
    text = subprocess.run(["systemd-analyze", "syscall-filter"], capture_output=True,
                          text=True, check=True).stdout
    groups, current = {}, None
    for line in text.splitlines():
        item = line.strip()
        if line.startswith("@"):
            current = item
            groups[current] = []
        elif item and not item.startswith("#") and current:
            groups[current].append(item)
    return groups


def expand(names, groups):
    out = set()
    for name in names:
        out |= expand(groups[name], groups) if name.startswith("@") else {name}
    return out


def main():
    unit, command = sys.argv[1], sys.argv[2:]
    s = unit_settings(unit)
    groups = syscall_groups()
    allowed = set()
    for value in s.get("SystemCallFilter", []):
        if value.startswith("~"):
            allowed -= expand(value[1:].split(), groups)
        else:
            allowed |= expand(value.split(), groups)
    if not allowed:
        sys.exit("the unit has no SystemCallFilter= allow list")
    error = getattr(errno, s.get("SystemCallErrorNumber", ["EPERM"])[-1])
    families = [getattr(socket, f) for f in s.get("RestrictAddressFamilies", [""])[-1].split()]

    libc = ctypes.CDLL(None, use_errno=True)
    if s.get("NoNewPrivileges", ["no"])[-1] == "yes":
        assert libc.prctl(38, 1, 0, 0, 0) == 0  # PR_SET_NO_NEW_PRIVS
    if s.get("MemoryDenyWriteExecute", ["no"])[-1] == "yes":
        if libc.prctl(65, 1, 0, 0, 0) != 0:  # PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN
            sys.exit("PR_SET_MDWE is not supported by this kernel (Linux 6.3 or later)")

    f = seccomp.SyscallFilter(defaction=seccomp.ERRNO(error))
    for name in sorted(allowed - {"socket"} if families else allowed):
        try:
            f.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError, OSError):
            pass  # no such system call on this architecture
    if families and "socket" in allowed:
        # systemd answers EAFNOSUPPORT for the families it does not allow.
        for family in families:
            f.add_rule(seccomp.ALLOW, "socket", seccomp.Arg(0, seccomp.EQ, family))
        for family in range(0, 64):
            if family not in families:
                f.add_rule(seccomp.ERRNO(errno.EAFNOSUPPORT), "socket",
                           seccomp.Arg(0, seccomp.EQ, family))
    f.load()
    os.execvp(command[0], command)


main()
