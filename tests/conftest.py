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
