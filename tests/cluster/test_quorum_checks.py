"""The cluster invariants on their own: each passes a healthy cluster and names a sick one."""

from chaos.invariants import quorum_checks

NODES = ["rc1@localhost", "rc2@localhost", "rc3@localhost"]
HEALTHY_QUEUE = {"leader": NODES[0], "members": NODES, "online": NODES}


def status_rows(commit_indexes: dict[str, int], leader: str = NODES[0]) -> list[dict]:
    return [
        {"Node Name": node, "Raft State": "leader" if node == leader else "follower",
         "Commit Index": index}
        for node, index in commit_indexes.items()
    ]  # fmt: skip


def checks(*, queues=None, statuses=None, node_stops=()):
    return {
        check.name: check
        for check in quorum_checks(
            nodes=NODES,
            queues=queues if queues is not None else {"fraud": HEALTHY_QUEUE},
            statuses=statuses
            if statuses is not None
            else {"fraud": status_rows(dict.fromkeys(NODES, 42))},
            node_stops=list(node_stops),
            election_limit=30,
        )
    }


def test_a_healthy_cluster_passes_every_check():
    stop = {"node": NODES[0], "leaders_elected_s": 1.6, "replicas_online_s": 3.0}

    assert all(check.ok for check in checks(node_stops=[stop]).values())


def test_a_queue_without_a_leader_or_with_a_replica_offline_fails():
    queues = {
        "fraud": HEALTHY_QUEUE | {"leader": ""},
        "billing": HEALTHY_QUEUE | {"online": NODES[:2]},
    }

    check = checks(queues=queues)["quorum queues led, replicas online"]

    assert not check.ok
    assert check.problems == [
        "billing: replicas offline on rc3@localhost",
        "fraud: no leader (none)",
    ]


def test_no_quorum_queue_at_all_fails():
    assert not checks(queues={})["quorum queues led, replicas online"].ok


def test_replicas_behind_the_leader_or_two_leaders_fail():
    behind = status_rows({NODES[0]: 42, NODES[1]: 42, NODES[2]: 40})
    split = [row | {"Raft State": "leader"} for row in status_rows(dict.fromkeys(NODES, 7))]

    check = checks(statuses={"fraud": behind, "billing": split})[
        "replicas caught up (commit index)"
    ]

    assert not check.ok
    assert "billing: 3 leaders" in check.problems
    assert any(problem.startswith("fraud: commit indexes differ") for problem in check.problems)


def test_a_stop_with_a_slow_election_or_a_replica_that_never_rejoins_fails():
    slow = {"node": NODES[0], "leaders_elected_s": 45.0, "replicas_online_s": 3.0}
    lost = {"node": NODES[1], "leaders_elected_s": 1.0, "replicas_online_s": None}

    check = checks(node_stops=[slow, lost])["leaders after each node stop"]

    assert not check.ok
    assert check.problems == [
        "rc1@localhost stopped: no leader for every queue in time",
        "rc2@localhost restarted: its replicas never came back online",
    ]
