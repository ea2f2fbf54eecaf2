"""`GET /v1/models` and `/api/models`: what the real openai client's `models.list()` sees."""

from __future__ import annotations

import openai
import pytest
from server_fakes import FakeModel

from tlm_hooks.server import ServerThread, create_app


@pytest.fixture
def served():
    app = create_app(FakeModel(), api_keys=["k-models"], model_aliases={"gpt-4.1-mini": "local"})
    with ServerThread(app) as server:
        yield server.base_url


@pytest.mark.parametrize("prefix", ["/v1", "/api"])
def test_models_list_names_the_served_model_and_its_aliases(served, prefix):
    client = openai.OpenAI(base_url=served + prefix, api_key="k-models")
    ids = [m.id for m in client.models.list()]
    assert ids[0] == FakeModel().name
    assert "gpt-4.1-mini" in ids
    assert len(ids) == len(set(ids))


def test_models_list_needs_the_key(served):
    client = openai.OpenAI(base_url=served + "/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.models.list()
