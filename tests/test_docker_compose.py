"""docker-compose.yml runs what the Procfile names (it cannot run here: no Docker daemon)."""

import yaml

from chaos.processes import ROOT


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(":", 1) for line in lines if line.strip())


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_procfile_process_is_a_compose_service_with_the_same_command():
    services = compose()["services"]

    for name, command in procfile().items():
        assert services[name]["command"] == command.strip(), name


def test_the_app_waits_for_the_release_and_the_release_for_healthy_services():
    services = compose()["services"]

    for name in ("web", "worker", "webhooks", "relay", "webhooks_relay", "deadletters"):
        assert services[name]["depends_on"] == {
            "release": {"condition": "service_completed_successfully"}
        }, name
    assert services["release"]["restart"] == "no"
    assert set(services["release"]["depends_on"]) == {"postgres", "rabbitmq"}
    assert services["rabbitmq"]["image"].endswith("-management")  # the management UI


def test_flower_is_optional_and_needs_basic_auth():
    flower = compose()["services"]["flower"]

    assert flower["profiles"] == ["flower"]  # not started by a plain `docker compose up`
    assert "exit 1" in flower["command"] and "FLOWER_BASIC_AUTH" in flower["command"]


def test_each_worker_has_a_liveness_check_by_ping_to_its_own_node():
    services = compose()["services"]
    for name, node in (("worker", "celery"), ("webhooks", "webhooks")):
        check = services[name]["healthcheck"]["test"]
        assert check[0] == "CMD-SHELL"
        assert f"inspect ping --destination {node}@$$HOSTNAME" in check[1]
        assert f"--hostname {node}@%h" in services[name]["command"] or node == "celery"
