"""The open-file limit the swarm and the bench runner raise before holding many sockets."""

from __future__ import annotations

import resource

import pytest

from chorus.bots import raise_open_files_limit


def test_the_open_files_limit_goes_up_to_the_hard_limit_and_never_down() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        pytest.skip("no open-file limit to raise")
    assert raise_open_files_limit(1) == soft
    target = soft + 1 if hard == resource.RLIM_INFINITY else hard
    assert raise_open_files_limit(target) == target
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] == target
