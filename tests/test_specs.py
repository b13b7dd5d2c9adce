"""The pure Swarm spec builder: what a profile asks for is what Swarm is asked for (no daemon needed).

GPU reservations are only checked here, on the spec: no GPU exists on the test machines.
"""

import json
import subprocess
import sys

import pytest

from mydocker_hub.environments.model import Environment, Home, Port, Resources
from mydocker_hub.swarm.specs import (
    HUB_TOKEN_FILE,
    PASSWORD_FILE,
    ServiceRequest,
    build_service_spec,
    home_volume_options,
    needs_password_file,
    reads_hub_token,
)

PASSWORD = "s3cr3t-Pa55word"
HUB_TOKEN = "9f1c0ffee-hub-api-token"


def make_env(**overrides):
    values = dict(slug="python", title={"en": "Python"}, image="mydocker/minimal:latest")
    values.update(overrides)
    return Environment(**values)


def make_request(**overrides):
    values = dict(
        service_name="mydocker-alice--python",
        username="alice",
        server_name="python",
        login="alice",
        hub_env={
            "JUPYTERHUB_API_TOKEN": HUB_TOKEN,
            "JPY_API_TOKEN": HUB_TOKEN,
            "JUPYTERHUB_SERVICE_PREFIX": "/user/alice/python/",
        },
        http_host_port=30123,
        home_volume="mydocker-home-alice",
        secret_id="sid",
        secret_name="mydocker-alice--python-pw-1",
    )
    values.update(overrides)
    return ServiceRequest(**values)


def container(spec):
    return spec["task_template"]["ContainerSpec"]


def test_limits_reservations_and_placement():
    env = make_env(
        resources=Resources(
            cpu_limit=2, cpu_reservation=0.5, memory_limit=4 * 1024**3, memory_reservation=2**30, node_pool="gpu"
        )
    )
    spec = build_service_spec(env, make_request())
    resources = spec["task_template"]["Resources"]
    assert resources["Limits"] == {"NanoCPUs": 2_000_000_000, "MemoryBytes": 4 * 1024**3}
    assert resources["Reservations"] == {"NanoCPUs": 500_000_000, "MemoryBytes": 2**30}
    assert spec["task_template"]["Placement"]["Constraints"] == ["node.labels.org.mydocker.pool == gpu"]


def test_gpu_is_a_generic_resource_reservation():
    spec = build_service_spec(make_env(resources=Resources(gpus=2)), make_request())
    generic = spec["task_template"]["Resources"]["Reservations"]["GenericResources"]
    assert generic == [{"DiscreteResourceSpec": {"Kind": "NVIDIA-GPU", "Value": 2}}]


def test_runs_as_non_root_without_capabilities():
    spec = build_service_spec(make_env(), make_request())
    assert container(spec)["User"] == "1000:100"
    assert container(spec)["CapabilityDrop"] == ["ALL"]
    assert container(spec)["Privileges"] == {"NoNewPrivileges": True}
    assert container(spec)["Init"] is True


@pytest.mark.parametrize(
    "home, expected_mounts",
    [
        pytest.param(Home(type="none"), [], id="none"),
        pytest.param(
            Home(type="global", mount_path="/home/jovyan"),
            [("volume", "mydocker-home-alice", "/home/jovyan")],
            id="global",
        ),
    ],
)
def test_home_volume(home, expected_mounts):
    spec = build_service_spec(make_env(home=home), make_request())
    mounts = [(m["Type"], m["Source"], m["Target"]) for m in container(spec).get("Mounts", [])]
    assert mounts == expected_mounts


def test_http_and_ssh_ports_are_published_in_host_mode():
    env = make_env(interface="ssh", ports=(Port("SSH", 2222, "ssh"),))
    spec = build_service_spec(env, make_request(http_host_port=None, tcp_host_ports={2222: 30555}))
    assert spec["endpoint_spec"]["Ports"] == [
        {"PublishedPort": 30555, "TargetPort": 2222, "Protocol": "tcp", "PublishMode": "host"}
    ]
    assert container(spec).get("Args") is None and container(spec).get("Command") is None  # image's own CMD


def test_jupyterlab_runs_singleuser_on_the_server_port():
    spec = build_service_spec(make_env(), make_request())
    assert container(spec)["Command"] == ["jupyterhub-singleuser", "--ip=0.0.0.0", "--port=8888"]
    assert "JUPYTERHUB_DEFAULT_URL=/lab" in container(spec)["Env"]
    assert spec["endpoint_spec"]["Ports"][0]["TargetPort"] == 8888


def test_the_hub_token_is_read_from_a_secret_file_never_put_in_the_spec():
    """`docker service inspect` (and `docker inspect` of the container) must not list the server's hub token."""
    spec = build_service_spec(make_env(), make_request(token_secret_id="tid", token_secret_name="x-tk-1"))
    assert HUB_TOKEN not in json.dumps(spec)
    assert not any(v.startswith(("JUPYTERHUB_API_TOKEN=", "JPY_API_TOKEN=")) for v in container(spec)["Env"])
    [secret] = [s for s in container(spec)["Secrets"] if s["SecretID"] == "tid"]
    assert f"/run/secrets/{secret['File']['Name']}" == HUB_TOKEN_FILE
    assert (secret["File"]["UID"], secret["File"]["Mode"]) == ("1000", 0o400)
    shell, flag, script = container(spec)["Command"]
    assert (shell, flag) == ("/bin/sh", "-c")
    assert script.endswith("&& exec jupyterhub-singleuser --ip=0.0.0.0 --port=8888")
    assert f'JUPYTERHUB_API_TOKEN="$(cat {HUB_TOKEN_FILE})"' in script


def test_home_volumes_are_created_with_the_configured_driver_and_filled_in_options():
    options = home_volume_options(
        {"type": "nfs", "o": "addr=nfs.example.fr,rw", "device": ":/homes/{volume}", "size": "{size}"},
        volume="mydocker-home-alice",
        username="alice",
        size=5 * 1024**3,
    )
    assert options == {
        "type": "nfs",
        "o": "addr=nfs.example.fr,rw",
        "device": ":/homes/mydocker-home-alice",
        "size": str(5 * 1024**3),
    }
    assert "size" not in home_volume_options({"size": "{size}"}, volume="v", username="alice", size=None)
    request = make_request(home_volume="mydocker-home-alice", home_volume_driver="local", home_volume_options=options)
    [mount] = container(build_service_spec(make_env(), request))["Mounts"]
    assert mount["VolumeOptions"]["DriverConfig"] == {"Name": "local", "Options": options}
    [plain] = container(build_service_spec(make_env(), make_request(home_volume="v")))["Mounts"]
    assert "DriverConfig" not in plain["VolumeOptions"]  # Docker's defaults, as before


@pytest.mark.parametrize(
    "run_as_user, owner",
    [
        pytest.param("1000:100", ("1000", "100", 0o400), id="default"),
        pytest.param("2000:2000", ("2000", "2000", 0o400), id="another-uid"),
        pytest.param("2000", ("2000", "0", 0o400), id="uid-only"),
        pytest.param(None, ("0", "0", 0o444), id="the-image-s-user"),
        pytest.param("jovyan", ("0", "0", 0o444), id="a-user-name"),
    ],
)
def test_the_secret_files_are_readable_by_the_container_s_user(run_as_user, owner):
    request = make_request(token_secret_id="tid", token_secret_name="x-tk-1", run_as_user=run_as_user)
    spec = build_service_spec(make_env(), request)
    for secret in container(spec)["Secrets"]:
        assert (secret["File"]["UID"], secret["File"]["GID"], secret["File"]["Mode"]) == owner


@pytest.mark.parametrize(
    "overrides, password, token",
    [
        pytest.param({}, False, True, id="jupyterlab"),
        pytest.param({"interface": "vscode"}, False, True, id="vscode"),
        pytest.param({"ports": (Port("SSH", 2222, "ssh"),)}, True, True, id="jupyterlab+ssh"),
        pytest.param({"interface": "ssh", "ports": (Port("SSH", 2222, "ssh"),)}, True, False, id="ssh-only"),
        pytest.param(
            {"interface": "custom", "command": ("run", "{password}"), "ports": (Port("web", 8080, "http"),)},
            True,
            True,
            id="custom-web-command",
        ),
        pytest.param(
            {"interface": "custom", "command": ("run", "{password}"), "ports": (Port("db", 5432, "tcp"),)},
            True,
            False,
            id="custom-tcp-command",
        ),
        pytest.param({"interface": "custom", "ports": (Port("web", 8080, "http"),)}, True, False, id="image-s-command"),
    ],
)
def test_which_secret_files_a_start_needs(overrides, password, token):
    env = make_env(**overrides)
    assert (needs_password_file(env), reads_hub_token(env)) == (password, token)


#: prints the arguments and the hub token variables it was started with, as JSON
SHOW_START = (
    "import json, os, sys; print(json.dumps("
    "[sys.argv[1:], os.environ.get('JUPYTERHUB_API_TOKEN'), os.environ.get('JPY_API_TOKEN')]))"
)


def run_start_script(spec, tmp_path, password: str | None = PASSWORD, token: str | None = HUB_TOKEN):
    """Run a service's ``/bin/sh -c`` command as its container would, the secret files (None: missing) in
    ``tmp_path``."""
    shell, flag, script = container(spec)["Command"]
    assert (shell, flag) == ("/bin/sh", "-c")
    tmp_path.mkdir(parents=True, exist_ok=True)
    for name, content in (("password", password), ("token", token)):
        if content is not None:
            (tmp_path / name).write_text(content)
    return subprocess.run(
        [shell, flag, script.replace(HUB_TOKEN_FILE, str(tmp_path / "token"))],
        env={"MYDOCKER_PASSWORD_FILE": str(tmp_path / "password"), "HOME": "/nowhere"},
        capture_output=True,
        text=True,
    )


def test_a_teachers_web_command_reads_the_hub_token_from_its_file_with_its_arguments_unchanged(tmp_path):
    """A teacher's own web server gets the hub API token in the variables stock spawners use, read from the
    secret file as it starts (never in the spec), and exactly the arguments the teacher wrote."""
    arguments = ("a b", "", "it's $HOME", "--user={username}", "`touch /tmp/x`", "--pw={password}")
    env = make_env(
        interface="custom", command=(sys.executable, "-c", SHOW_START, *arguments), ports=(Port("web", 8080, "http"),)
    )
    spec = build_service_spec(env, make_request(token_secret_id="tid", token_secret_name="x-tk-1"))
    assert HUB_TOKEN not in json.dumps(spec)
    assert not any(v.startswith(("JUPYTERHUB_API_TOKEN=", "JPY_API_TOKEN=")) for v in container(spec)["Env"])
    assert {s["File"]["Name"] for s in container(spec)["Secrets"]} == {"mydocker-hub-token", "mydocker-password"}
    argv, token, old_name_token = json.loads(run_start_script(spec, tmp_path).stdout)
    assert argv == ["a b", "", "it's $HOME", "--user=alice", "`touch /tmp/x`", f"--pw={PASSWORD}"]
    assert token == old_name_token == HUB_TOKEN
    # a secret file that cannot be read stops the start: the server never runs with an empty token
    (tmp_path / "token").unlink()
    started = run_start_script(spec, tmp_path, token=None)
    assert started.returncode != 0 and started.stdout == ""


def test_a_teachers_command_gets_the_password_wherever_it_is_written(tmp_path):
    password = "p$a'ss\"w`rd $(id)"  # as the shell reads it: nothing in it is run or expanded again
    command = (sys.executable, "-c", SHOW_START, "{password}", "x{password}y{password}", "{password}-end")
    env = make_env(interface="custom", command=command, ports=(Port("db", 5432, "tcp"),))
    spec = build_service_spec(env, make_request())
    assert container(spec)["Secrets"][0]["File"]["Name"] == PASSWORD_FILE.rsplit("/", 1)[1]
    argv, token, _ = json.loads(run_start_script(spec, tmp_path, password=password).stdout)
    assert argv == [password, f"x{password}y{password}", f"{password}-end"]
    assert token is None  # a TCP service has no use for the hub's token
    started = run_start_script(spec, tmp_path / "elsewhere", password=None)  # the file unreadable
    assert started.returncode != 0 and started.stdout == ""


def test_a_command_that_reads_no_secret_is_run_as_written():
    tcp = make_env(interface="custom", command=("server", "--port", "5432", ""), ports=(Port("db", 5432, "tcp"),))
    assert container(build_service_spec(tcp, make_request()))["Command"] == ["server", "--port", "5432", ""]
    # an image's own web command is not wrapped: it gets the token as stock spawners give it
    own = make_env(interface="custom", ports=(Port("web", 8080, "http"),))
    spec = build_service_spec(own, make_request())
    assert container(spec).get("Command") is None
    assert f"JUPYTERHUB_API_TOKEN={HUB_TOKEN}" in container(spec)["Env"]


def test_an_ssh_only_server_gets_no_hub_token_at_all():
    env = make_env(interface="ssh", ports=(Port("SSH", 2222, "ssh"),))
    spec = build_service_spec(env, make_request(http_host_port=None, tcp_host_ports={2222: 30200}))
    assert HUB_TOKEN not in json.dumps(spec)
    assert f"MYDOCKER_PASSWORD_FILE={PASSWORD_FILE}" in container(spec)["Env"]


def test_password_never_appears_in_the_spec_even_with_a_password_placeholder():
    env = make_env(
        interface="custom", command=("jupyter", "lab", "--IdentityProvider.token={password}", "--user={username}")
    )
    spec = build_service_spec(env, make_request())
    command = container(spec)["Command"]
    assert command[:2] == ["/bin/sh", "-c"]
    assert '--IdentityProvider.token="$MYDOCKER_PASSWORD"' in command[2] and "--user=alice" in command[2]
    assert container(spec)["Secrets"][0]["File"]["Name"] == PASSWORD_FILE.rsplit("/", 1)[1]
    assert container(spec)["Secrets"][0]["File"]["Mode"] == 0o400


def test_labels_identify_user_server_and_environment():
    spec = build_service_spec(make_env(), make_request())
    assert spec["labels"]["org.mydocker.user"] == "alice"
    assert spec["labels"]["org.mydocker.environment"] == "python"
    assert spec["labels"]["org.mydocker.managed"] == "mydocker"
