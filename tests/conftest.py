import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def pool():
    """The project's local HTCondor pool: reused if already up, else started and stopped here."""
    from chtcd import localpool

    was_up = localpool.is_up()
    started = localpool.start()
    yield started
    if not was_up:
        localpool.stop()


@pytest.fixture(autouse=True, scope="session")
def no_daemon_left_behind():
    """A test that fails half way must not leave its chtcd running after the session."""
    yield
    from harness import Chtcd

    while Chtcd.started:
        instance = Chtcd.started.pop()
        if instance.proc is not None and instance.proc.poll() is None:
            instance.proc.kill()
            instance.proc.wait(timeout=10)
