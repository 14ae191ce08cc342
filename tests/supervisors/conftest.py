import pytest

from tests.supervisors.children import Journal


@pytest.fixture
def journal() -> Journal:
    return Journal()
