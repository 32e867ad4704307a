"""The analysis spec: ids, tokens and the container's environment."""

from __future__ import annotations

import base64
import json
import time

from _services import make_spec

from flame_offline.emulator.spec import make_jwt


def sdk_decode(token):
    """Decode the payload as flamesdk's extract_remaining_time_from_token does."""
    payload = token.split(".")[1]
    payload += "=" * (-len(payload) % 4)
    return json.loads(base64.b64decode(payload).decode("utf-8"))


def test_jwt_exp_as_the_sdk_reads_it():
    for _ in range(50):  # the payload varies (jti); every one must decode the SDK's way
        claims = sdk_decode(make_jwt({"sub": "s"}, lifetime=600))
        assert claims["sub"] == "s"
        assert 590 <= claims["exp"] - time.time() <= 601


def test_nodes_and_ids(tmp_path):
    spec = make_spec(tmp_path)
    assert [n.name for n in spec.nodes] == ["node1", "node2", "aggregator"]
    assert [n.role for n in spec.nodes] == ["default", "default", "aggregator"]
    (tmp_path / "again").mkdir()
    again = make_spec(tmp_path / "again")
    assert [n.node_id for n in again.nodes] == [n.node_id for n in spec.nodes]  # stable per name
    assert again.analysis_id != spec.analysis_id
    assert len({n.keycloak_token for n in spec.nodes}) == 3
    assert len({n.data_source_token for n in spec.nodes}) == 3


def test_container_env_is_exactly_a_flame_pods(tmp_path):
    spec = make_spec(tmp_path)
    node = spec.node("node2")
    env = spec.container_env(node, python_bin="/venv/bin")
    assert set(env) == {
        "PATH",
        "HOME",
        "HOSTNAME",
        "LANG",
        "ANALYSIS_ID",
        "PROJECT_ID",
        "DEPLOYMENT_NAME",
        "KEYCLOAK_TOKEN",
        "DATA_SOURCE_TOKEN",
    }
    assert env["DEPLOYMENT_NAME"] == f"analysis-{spec.analysis_id}-0"
    assert spec.nginx_host == f"nginx-{env['DEPLOYMENT_NAME']}"
    assert env["PATH"].startswith("/venv/bin:")
    assert env["KEYCLOAK_TOKEN"] == node.keycloak_token
