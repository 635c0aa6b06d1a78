"""Real services for integration tests, one of each per session where the tests can share it.

A local Ray (`ray.init` in this process); and the compose topology from cluster.py: one
PostgreSQL, one `mlflow server` on it, one token-auth two-node Ray cluster whose node1 lacks the
sweep package. Each module that uses the tracking server or the cluster gets it healed first: a
node an earlier test killed is started again, a tracking server it left stopped is restarted.
Tests that kill what they run on (the lost node, nothing lost, the faults) start their own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cluster import MlflowServer, PostgresServer, RayCluster, cluster_without_sweep
from lanes import SHARED_SERVICES_MODULES


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """One local Ray for the whole session (2 CPUs, as on CI)."""
    import ray

    from sweep.cluster import init_ray

    init_ray(None, 2)
    yield
    ray.shutdown()


@pytest.fixture(scope="session")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    """The session's PostgreSQL; a test that wants a store of its own calls create_database()."""
    with PostgresServer(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture(scope="session")
def shared_tracking(
    tmp_path_factory: pytest.TempPathFactory, postgres: PostgresServer
) -> Iterator[MlflowServer]:
    with MlflowServer(postgres.url, tmp_path_factory.mktemp("tracking") / "artifacts") as server:
        yield server


@pytest.fixture(scope="module")
def tracking(shared_tracking: MlflowServer) -> MlflowServer:
    """The session's `mlflow server` on PostgreSQL, up (services/start-mlflow.sh, as compose runs it)."""
    if not shared_tracking.healthy():
        shared_tracking.stop()
        shared_tracking.start()
    return shared_tracking


@pytest.fixture
def mlflow_server(tracking: MlflowServer) -> str:
    """The URL of a real `mlflow server` on loopback."""
    return tracking.url


@pytest.fixture(scope="session")
def shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RayCluster]:
    with cluster_without_sweep(tmp_path_factory.mktemp("cluster")) as ray_cluster:
        yield ray_cluster


@pytest.fixture(scope="module")
def cluster(shared_cluster: RayCluster) -> RayCluster:
    """The session's two-node cluster (node1 without the sweep package), every node alive."""
    return shared_cluster.heal()


SHARED = ("ray_local", "postgres", "shared_tracking", "shared_cluster")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on the session's shared services come first (under xdist they are one unit of
    work, tests/lanes.py); among them those on the two-node cluster run last, one after another:
    the cluster starts for them and idles through no other test (on 2 cores, an idle two-node
    cluster is work in the way). A test on a shared service from a module that is not in that unit
    would start a second set of them in another worker: refused."""

    def shared(item: pytest.Item) -> bool:
        return bool(set(SHARED) & set(getattr(item, "fixturenames", ())))

    strays = sorted({item.nodeid.split("::")[0] for item in items if shared(item)} - SHARED_SERVICES_MODULES)
    if strays:
        raise pytest.UsageError(
            f"{', '.join(strays)} use the session's shared services: add them to SHARED_SERVICES_MODULES "
            "in tests/lanes.py"
        )
    items.sort(
        key=lambda item: (
            item.nodeid.split("::")[0] not in SHARED_SERVICES_MODULES,
            "shared_cluster" in getattr(item, "fixturenames", ()),
        )
    )
