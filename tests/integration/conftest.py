"""Real services for integration tests, one of each per session where the tests can share it,
each stopped after the last test on it.

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
from lanes import SHARED_SERVICES_MODULES, lane_rank, module_of


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


# The session's shared services, in the order they stop: each before what it runs on.
SHARED = ("ray_local", "shared_cluster", "shared_tracking", "postgres")
# Each service's last test (nodeid): it stops after that test instead of idling to the session's end.
_LAST_USE: dict[str, str] = {}


def _uses(item: pytest.Item, name: str) -> bool:
    return name in getattr(item, "fixturenames", ())


@pytest.hookimpl(trylast=True)  # after -m / -k deselect: the last test on a service is one that runs
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests on the session's shared services come first (under xdist they are one unit of
    work, tests/lanes.py): those on the local Ray, then the rest, then those on the two-node cluster,
    one after another, so each service runs from its first test to its last and no longer (an idle
    Ray or two-node cluster is work in the way on 2 cores). The other tests follow, the longest
    first and the fast ones last, so that short tests fill each lane's end. A test on a shared
    service from a module that is not in that unit would start a second set of them in another
    worker: refused."""
    strays = {
        module_of(item.nodeid) for item in items if any(_uses(item, name) for name in SHARED)
    } - SHARED_SERVICES_MODULES
    if strays:
        raise pytest.UsageError(
            f"{', '.join(sorted(strays))} use the session's shared services: add them to "
            "SHARED_SERVICES_MODULES in tests/lanes.py"
        )
    items.sort(
        key=lambda item: (
            module_of(item.nodeid) not in SHARED_SERVICES_MODULES,
            _uses(item, "shared_cluster"),
            not _uses(item, "ray_local"),
            item.get_closest_marker("slow") is None,
            lane_rank(item.nodeid),
        )
    )
    _LAST_USE.clear()
    for item in items:
        _LAST_USE.update({name: item.nodeid for name in SHARED if _uses(item, name)})


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """After a service's last test, stop it (each stop is idempotent: the session's own teardown
    at the end finds it stopped)."""
    yield
    for name in SHARED:
        if _LAST_USE.get(name) == item.nodeid:
            if name == "ray_local":
                import ray

                ray.shutdown()
            elif (service := (getattr(item, "funcargs", None) or {}).get(name)) is not None:
                service.stop()
    return None
