"""Publishing that cannot reach or is refused by the Hub fails in one line, without the token (stand-in Hub API)."""

from __future__ import annotations

import pytest

from sctranslator.cli import main as cli_main

from ..conftest import SECRET


@pytest.mark.parametrize("failure", ["no_network", "refused"])
def test_push_failures_are_one_line_without_the_token(hub, monkeypatch, capsys, failure):
    """No network (DNS, connection) or a Hub refusal (401/403): one line that names the cause, exit 2."""
    from types import SimpleNamespace

    from huggingface_hub.errors import HfHubHTTPError

    from modeling_sctranslator.default_model import DEFAULT_MODEL_DIR

    def create_repo(*args, **kwargs):
        if failure == "no_network":
            raise ConnectionError("[Errno -2] Name or service not known")
        response = SimpleNamespace(headers={}, request=None, status_code=401)
        raise HfHubHTTPError("401 Client Error: Unauthorized for url: https://huggingface.co/api/repos/create",
                             response=response)

    monkeypatch.setattr(hub, "create_repo", create_repo)
    assert cli_main(["push", "--model", str(DEFAULT_MODEL_DIR), "--repo-id", "testorg/x",
                     "--token-env", "HF_TOKEN_FOR_TESTS"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err and SECRET not in err
    assert ("cannot reach the Hugging Face Hub" if failure == "no_network" else "the Hub refused") in err
    assert "nothing was uploaded" in err
