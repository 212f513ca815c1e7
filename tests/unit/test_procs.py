"""Process sessions (gateway/runtime/procs.py): how `gateway down` finds a stack's orphans."""

from __future__ import annotations

import subprocess
import sys

from gateway.runtime import procs

# A session leader whose child outlives it, as NGINX's workers outlive a killed master.
_ORPHANING = ("import subprocess, sys; "
              "p = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); print(p.pid)")


def test_a_session_keeps_its_orphans_and_nothing_else() -> None:
    with subprocess.Popen([sys.executable, "-c", _ORPHANING], stdout=subprocess.PIPE, text=True,
                          start_new_session=True) as leader:
        assert leader.stdout is not None
        orphan = int(leader.stdout.readline())
    # The leader is gone; its child is reparented but stays in the leader's session.
    start = procs.start_of(orphan)
    assert start is not None and procs.session_of(orphan) == leader.pid
    members = {procs.Proc(orphan, start)}
    try:
        assert procs.session(leader.pid, since=0) == members
        assert procs.session(leader.pid, since=start + 1) == set()  # started before: not that stack's
    finally:
        procs.kill(members)
        assert procs.wait_gone(members, 10)
    assert procs.session(leader.pid, since=0) == set()
