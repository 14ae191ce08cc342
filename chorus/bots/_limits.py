"""The open-file limit: a process holding N sockets needs N file descriptors."""

from __future__ import annotations

import resource


def raise_open_files_limit(wanted: int) -> int:
    """Raise this process's RLIMIT_NOFILE to at least `wanted` if it can; return the limit.

    The soft limit goes up to the hard limit; the hard limit itself goes up
    only where that is allowed (root, or CAP_SYS_RESOURCE). Child processes
    inherit the result, so a server started afterwards gets it too.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return wanted if soft == resource.RLIM_INFINITY else soft
    if hard == resource.RLIM_INFINITY or hard >= wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
        return wanted
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
    except (ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        return hard
    return wanted
