"""`make test`'s two lanes under pytest-xdist (`--numprocesses=2 --dist loadgroup`).

The test modules with tests on the session's shared services (tests/integration/conftest.py: the
local Ray, PostgreSQL, its `mlflow server`, the two-node cluster) are one unit of work, so one
worker starts those services, once; so is each module in `ONE_LANE_MODULES`. Every other test is
a unit of its own, handed to whichever worker is free: the longest slow modules first
(`LONGEST_FIRST`), then the other slow tests, then the fast ones, so that neither lane ends on a
long test while the other has nothing left (the order is tests/integration/conftest.py's). That
conftest refuses a test on the shared services from a module not named here.
"""

from __future__ import annotations

from xdist.scheduler import LoadScopeScheduling
from xdist.workermanage import WorkerController

SHARED_SERVICES_MODULES = frozenset(
    f"tests/integration/{name}.py"
    for name in (
        "test_api_service",
        "test_cluster",
        "test_cluster_harness",
        "test_engine",
        "test_learning_rate_ranges",
    )
)

# Modules whose tests share a fixture of their own that is costly to start twice (test_mlflow_links:
# an `mlflow server` holding a sweep), each one unit of work, so that one worker starts it once.
ONE_LANE_MODULES = frozenset({"tests/integration/test_mlflow_links.py"})

# Modules with a test of a minute or more in two lanes (docs/performance.md), longest first.
LONGEST_FIRST = (
    "tests/integration/test_nothing_lost.py",
    "tests/integration/test_checkpoints.py",
    "tests/integration/test_reproduce.py",
    "tests/integration/test_api_queue.py",
    "tests/unit/test_prefetch.py",
    "tests/integration/test_cli_run.py",
)


def module_of(nodeid: str) -> str:
    """The test module of a node id (`tests/integration/test_engine.py`)."""
    return nodeid.split("::")[0]


def lane_rank(nodeid: str) -> int:
    """Where a test outside the shared services' unit starts: the longest modules first."""
    module = module_of(nodeid)
    return LONGEST_FIRST.index(module) if module in LONGEST_FIRST else len(LONGEST_FIRST)


class SharedServicesScheduling(LoadScopeScheduling):
    """xdist's load scheduling with the shared-services modules' tests as one unit of work, handed
    out first (xdist orders units by their number of tests, then as collected).

    This is what `--dist loadgroup` with an `xdist_group` mark would do, but pytest-xdist 3.8 groups
    by renaming each item's `_nodeid`, which pytest 9.2 no longer reads, so its groups are ignored.
    """

    def _split_scope(self, nodeid: str) -> str:
        module = module_of(nodeid)
        if module in SHARED_SERVICES_MODULES:
            return "shared-services"
        return module if module in ONE_LANE_MODULES else nodeid

    def _assign_work_unit(self, node: WorkerController) -> None:
        """xdist's, but every test of the unit is sent, those that share a node id included.

        Schemathesis' tests (one per API operation) share one node id; xdist's own version sends
        the first index of each id, so the others never ran and nothing said so.
        """
        scope, work_unit = self.workqueue.popitem(last=False)
        self.assigned_work.setdefault(node, {})[scope] = work_unit
        pending = {nodeid for nodeid, completed in work_unit.items() if not completed}
        collection = self.registered_collections[node]
        node.send_runtest_some([i for i, nodeid in enumerate(collection) if nodeid in pending])
