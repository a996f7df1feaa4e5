"""The bundled demo film opened once for every viewer test that needs it (parsing it loads
three assets, poses a rigged character and bakes physics: seconds)."""

import pytest

from helpers import SCENES


@pytest.fixture(scope="session")
def demo_session():
    from splatfilm.view.session import open_session

    return open_session(SCENES / "set" / "film.yaml")
