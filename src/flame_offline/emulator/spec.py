"""The analysis being emulated: its ids, its nodes, and what each node's pod gets.

A FLAME analysis has one id across all nodes; on every node the pod orchestration starts a
deployment ``analysis-{ANALYSIS_ID}-{restart}`` whose container gets ``ANALYSIS_ID``,
``PROJECT_ID``, ``DEPLOYMENT_NAME``, a Keycloak access token (a JWT; the SDK reads its
``exp``) and the data source token (Kong's ``apikey``), and reaches every node service through
its nginx ``nginx-{DEPLOYMENT_NAME}``.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["AGGREGATOR", "HOSPITAL", "AnalysisSpec", "NodeSpec", "make_jwt"]

AGGREGATOR = "aggregator"
HOSPITAL = "default"  # FLAME's role name of an analyzer node

# Node ids are fixed per node name (a hospital's id is the same on every run, as in FLAME,
# where it is the Hub's id of that node), so results are reproducible run to run.
_NODE_NAMESPACE = uuid.UUID("6f1d1d0e-5b38-4c7b-9d3e-3c1f0f3f6a10")

# What a container of FLAME's python image has besides the analysis's own variables.
_CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def make_jwt(claims: dict, *, lifetime: float = 3600.0) -> str:
    """Make an unsigned-looking but well-formed JWT with ``exp`` = now + ``lifetime``.

    Nothing verifies the signature here (the emulated services compare tokens as opaque
    strings). flamesdk 0.5/0.6 decode the payload with ``base64.b64decode``, which drops
    the URL-safe characters ``-`` and ``_`` instead of decoding them, so a payload whose
    encoding contains one fails there; ``jti`` is chosen so that the encoding has none.
    """
    header = _b64url(json.dumps({"alg": "RS256", "typ": "JWT"}).encode())
    now = int(time.time())
    while True:
        body = {**claims, "iat": now, "exp": int(now + lifetime), "jti": str(uuid.uuid4())}
        payload = _b64url(json.dumps(body, separators=(",", ":")).encode())
        if "-" not in payload and "_" not in payload:
            break
    signature = _b64url(secrets.token_bytes(64))
    return f"{header}.{payload}.{signature}"


@dataclass
class NodeSpec:
    """One node of the analysis: a hospital (role ``'default'``) or the aggregator."""

    name: str
    role: str
    node_id: str
    hospital_dir: Path | None = None
    keycloak_token: str = ""
    data_source_token: str = ""

    @property
    def is_aggregator(self) -> bool:
        """Whether this node is the aggregator."""
        return self.role == AGGREGATOR


@dataclass
class AnalysisSpec:
    """The ids shared by all nodes, and the nodes (hospitals first, the aggregator last)."""

    analysis_id: str
    project_id: str
    nodes: list[NodeSpec] = field(default_factory=list)
    restart_counter: int = 0

    @classmethod
    def create(cls, hospitals: dict[str, Path]) -> AnalysisSpec:
        """Create an analysis with one node per hospital (name -> folder) plus the aggregator."""
        spec = cls(analysis_id=str(uuid.uuid4()), project_id=str(uuid.uuid4()))
        for name, folder in hospitals.items():
            spec.nodes.append(spec._node(name, HOSPITAL, folder))
        spec.nodes.append(spec._node(AGGREGATOR, AGGREGATOR, None))
        return spec

    def _node(self, name: str, role: str, folder: Path | None) -> NodeSpec:
        node_id = str(uuid.uuid5(_NODE_NAMESPACE, name))
        token = make_jwt(
            {
                "iss": "http://keycloak.flame-node/realms/flame",
                "sub": str(uuid.uuid5(_NODE_NAMESPACE, f"{self.analysis_id}/{name}")),
                "azp": self.analysis_id,
                "typ": "Bearer",
            }
        )
        return NodeSpec(
            name=name,
            role=role,
            node_id=node_id,
            hospital_dir=folder,
            keycloak_token=token,
            data_source_token=secrets.token_urlsafe(32),
        )

    @property
    def deployment_name(self) -> str:
        """The Kubernetes deployment's name: ``analysis-<analysis id>-<restart counter>``."""
        return f"analysis-{self.analysis_id}-{self.restart_counter}"

    @property
    def nginx_host(self) -> str:
        """The name every node's analysis uses for its own nginx (the same on every node)."""
        return f"nginx-{self.deployment_name}"

    @property
    def hospitals(self) -> list[NodeSpec]:
        """The hospitals' nodes, in order."""
        return [node for node in self.nodes if not node.is_aggregator]

    @property
    def aggregator(self) -> NodeSpec:
        """The aggregator's node."""
        return next(node for node in self.nodes if node.is_aggregator)

    def node(self, name: str) -> NodeSpec:
        """Return the node named ``name``."""
        return next(node for node in self.nodes if node.name == name)

    def by_id(self, node_id: str) -> NodeSpec | None:
        """Return the node with id ``node_id``, or ``None``."""
        return next((node for node in self.nodes if node.node_id == node_id), None)

    def container_env(self, node: NodeSpec, *, python_bin: str) -> dict[str, str]:
        """Return the complete environment of the node's analysis container, nothing inherited."""
        return {
            "PATH": f"{python_bin}:{_CONTAINER_PATH}",
            "HOME": "/root",
            "HOSTNAME": self.pod_name(node),
            "LANG": "C.UTF-8",
            "ANALYSIS_ID": self.analysis_id,
            "PROJECT_ID": self.project_id,
            "DEPLOYMENT_NAME": self.deployment_name,
            "KEYCLOAK_TOKEN": node.keycloak_token,
            "DATA_SOURCE_TOKEN": node.data_source_token,
        }

    def pod_name(self, node: NodeSpec) -> str:
        """Return the name Kubernetes gives the pod of ``node``'s analysis."""
        # Kubernetes names a deployment's pod "<deployment>-<replicaset hash>-<pod hash>".
        suffix = uuid.uuid5(_NODE_NAMESPACE, f"{self.analysis_id}/{node.name}/pod").hex
        return f"{self.deployment_name}-{suffix[:10]}-{suffix[10:15]}"
