#!/usr/bin/env python3
"""Runs a command under a seccomp filter that refuses setpriority(2) with EPERM, as a sandbox
without that syscall does (Docker's default profile allows it; stricter ones do not). Tests use it
to see queue.nice's refusal path in a real daemon. Linux on x86_64 or aarch64; no compiler needed.

    deny-setpriority.py COMMAND [ARG...]
"""
import ctypes
import os
import platform
import sys

# (audit arch, setpriority's number) per machine: linux/audit.h, asm/unistd.h.
ARCHES = {'x86_64': (0xC000003E, 141), 'aarch64': (0xC00000B7, 140)}
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2
SECCOMP_RET_ALLOW = 0x7FFF0000
SECCOMP_RET_ERRNO = 0x00050000
EPERM = 1
BPF_LD_W_ABS = 0x20
BPF_JMP_JEQ_K = 0x15
BPF_RET_K = 0x06


class SockFilter(ctypes.Structure):
    _fields_ = [('code', ctypes.c_ushort), ('jt', ctypes.c_ubyte), ('jf', ctypes.c_ubyte), ('k', ctypes.c_uint)]


class SockFprog(ctypes.Structure):
    _fields_ = [('len', ctypes.c_ushort), ('filter', ctypes.POINTER(SockFilter))]


def main() -> None:
    if len(sys.argv) < 2:
        sys.exit('usage: deny-setpriority.py COMMAND [ARG...]')
    arch, nr = ARCHES[platform.machine()]
    program = [
        SockFilter(BPF_LD_W_ABS, 0, 0, 4),  # seccomp_data.arch
        SockFilter(BPF_JMP_JEQ_K, 0, 3, arch),  # another ABI: allow
        SockFilter(BPF_LD_W_ABS, 0, 0, 0),  # seccomp_data.nr
        SockFilter(BPF_JMP_JEQ_K, 0, 1, nr),
        SockFilter(BPF_RET_K, 0, 0, SECCOMP_RET_ERRNO | EPERM),
        SockFilter(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ]
    filters = (SockFilter * len(program))(*program)
    prog = SockFprog(len(program), filters)
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        sys.exit(f'prctl(PR_SET_NO_NEW_PRIVS): {os.strerror(ctypes.get_errno())}')
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        sys.exit(f'prctl(PR_SET_SECCOMP): {os.strerror(ctypes.get_errno())}')
    os.execvp(sys.argv[1], sys.argv[1:])


main()
