"""How chaos.cluster runs its nodes and tools: from the machine, or from a Debian root."""

from pathlib import Path

import pytest

from chaos.cluster import RabbitCluster


@pytest.fixture
def debian_root(tmp_path: Path) -> Path:
    """A root whose rabbitmq user is not the machine's (4242:4343), as a Debian 13 one may be."""
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(
        "root:x:0:0:root:/root:/bin/bash\n"
        "rabbitmq:x:4242:4343:RabbitMQ messaging server:/var/lib/rabbitmq:/usr/sbin/nologin\n"
    )
    return root


def test_from_a_root_a_node_runs_chrooted_as_the_roots_own_rabbitmq_user(tmp_path, debian_root):
    cluster = RabbitCluster(directory=tmp_path / "cluster", root=str(debian_root))

    argv = cluster._command(["rabbitmq-server"], as_rabbitmq=True)

    # unshare: /proc and the cluster directory are mounted in a namespace that dies with the node.
    assert argv[:4] == ["unshare", "--mount", "--propagation", "private"]
    assert argv[-4:] == [
        str(debian_root),
        str(tmp_path / "cluster"),
        "4242:4343",
        "rabbitmq-server",
    ]
    assert "chroot" in argv[6]


def test_from_a_root_the_cli_runs_chrooted_as_root(tmp_path, debian_root):
    cluster = RabbitCluster(directory=tmp_path / "cluster", root=str(debian_root))

    argv = cluster._command(["rabbitmqctl", "status"], as_rabbitmq=False)

    assert argv[-5:] == [str(debian_root), str(tmp_path / "cluster"), "", "rabbitmqctl", "status"]


def test_without_a_root_the_tools_run_from_the_machine(tmp_path):
    cluster = RabbitCluster(directory=tmp_path / "cluster", root="")

    assert cluster._command(["rabbitmqctl", "status"], as_rabbitmq=False) == [
        "rabbitmqctl",
        "status",
    ]


def test_a_saved_cluster_keeps_its_root(tmp_path, debian_root):
    directory = tmp_path / "cluster"
    directory.mkdir()
    RabbitCluster(directory=directory, root=str(debian_root)).save()

    assert RabbitCluster.load(directory).root == str(debian_root)
