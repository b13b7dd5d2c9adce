"""Pure builders: an environment + a user's spawn request -> the keyword arguments of a Swarm service.

Nothing here talks to Docker, so every decision about limits, mounts, ports, users and placement is testable
without a daemon (``tests/test_specs.py``). The spawner gathers the inputs (allocated ports, names, the hub's
environment variables) and hands them over in a :class:`ServiceRequest`.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from docker.types import (
    ContainerSpec,
    DriverConfig,
    EndpointSpec,
    Mount,
    Placement,
    Resources,
    RestartPolicy,
    SecretReference,
    TaskTemplate,
)

from ..environments.model import INTERFACE_DEFAULT_URLS, Environment

#: labels every managed service carries; the watcher selects on MANAGED_LABEL
MANAGED_LABEL = "org.mydocker.managed"
USER_LABEL = "org.mydocker.user"
SERVER_LABEL = "org.mydocker.server"
ENVIRONMENT_LABEL = "org.mydocker.environment"
HTTP_PORT_LABEL = "org.mydocker.http-port"
#: label of a Swarm secret: the service it was created for (removed with it, or swept once it is gone)
SECRET_SERVICE_LABEL = "org.mydocker.service"
PASSWORD_FILE = "/run/secrets/mydocker-password"
#: the server's hub API token (also its OAuth client secret), read at start instead of a variable in the spec
HUB_TOKEN_FILE = "/run/secrets/mydocker-hub-token"
#: variables that carry the hub API token; none of them may appear in a service spec
HUB_TOKEN_VARIABLES = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN")


@dataclass(frozen=True)
class ServiceRequest:
    """Everything about one start that is not in the environment profile."""

    service_name: str
    username: str
    server_name: str
    login: str
    hub_env: dict[str, str] = field(repr=False)  # JUPYTERHUB_* variables from Spawner.get_env() (a token)
    server_port: int = 8888  # port jupyterhub-singleuser listens on inside the container
    http_host_port: int | None = None  # host-mode published port of the server, None if not published
    tcp_host_ports: dict[int, int] = field(default_factory=dict)  # container port -> host port
    home_volume: str | None = None
    home_volume_driver: str = "local"  # the driver Docker creates the home volume with (first start only)
    home_volume_options: dict[str, str] = field(default_factory=dict)  # its options, placeholders filled
    secret_id: str | None = None  # the Swarm secret holding the login's password (PASSWORD_FILE)
    secret_name: str | None = None
    token_secret_id: str | None = None  # the Swarm secret holding the hub API token (HUB_TOKEN_FILE)
    token_secret_name: str | None = None
    run_as_user: str | None = "1000:100"
    drop_capabilities: tuple[str, ...] = ("ALL",)
    no_new_privileges: bool = True
    networks: tuple[str, ...] = ()
    node_pool_label: str = "org.mydocker.pool"
    gpu_resource_kind: str = "NVIDIA-GPU"
    hub_label: str = "mydocker"
    extra_labels: dict[str, str] = field(default_factory=dict)


def _nano(cores: float | None) -> int | None:
    return int(cores * 1e9) if cores else None


#: shell words that put the server's hub API token, read from its secret file, into the variable programs read
READ_HUB_TOKEN = f'JUPYTERHUB_API_TOKEN="$(cat {HUB_TOKEN_FILE})" && export JUPYTERHUB_API_TOKEN'


def _teacher_command(command: tuple[str, ...], login: str, reads_token: bool) -> list[str]:
    """A teacher's command with ``{username}`` filled in. What it must not show in the spec is read from the
    secret files as it starts, through ``/bin/sh``: ``{password}``, and the hub API token (in
    ``JUPYTERHUB_API_TOKEN`` and ``JPY_API_TOKEN``, as stock spawners name it) for a web command."""
    args = [arg.replace("{username}", login) for arg in command]
    uses_password = any("{password}" in arg for arg in args)
    if not (uses_password or reads_token):
        return args
    words = []
    for arg in args:
        if "{password}" in arg:
            pieces = [shlex.quote(piece) if piece else "" for piece in arg.split("{password}")]
            words.append('"$MYDOCKER_PASSWORD"'.join(pieces))
        else:
            words.append(shlex.quote(arg))
    run = "exec " + " ".join(words)
    if uses_password:
        # its own statement: in `VAR=value exec program "$VAR"` the arguments are expanded before the
        # assignment, and the program would get an empty password; with `&&`, an unreadable file stops here
        run = f'MYDOCKER_PASSWORD="$(cat "$MYDOCKER_PASSWORD_FILE")" && {run}'
    if reads_token:
        run = f'{READ_HUB_TOKEN} && JPY_API_TOKEN="$JUPYTERHUB_API_TOKEN" && export JPY_API_TOKEN && {run}'
    return ["/bin/sh", "-c", run]


def runs_singleuser(env: Environment) -> bool:
    """Whether the container runs ``jupyterhub-singleuser`` (web interfaces without a teacher's command)."""
    return not env.command and env.interface in INTERFACE_DEFAULT_URLS


def reads_hub_token(env: Environment) -> bool:
    """Whether the container's command reads the hub API token from its secret file (``HUB_TOKEN_FILE``): the
    single-user server, and a teacher's command of a web environment. An image's own command (which the
    spawner does not wrap) gets it as a variable, as with stock spawners; SSH/TCP-only ones do not get it."""
    return runs_singleuser(env) or (bool(env.command) and env.serves_http)


def needs_password_file(env: Environment) -> bool:
    """Whether the container reads the login's password: SSH/TCP services, teachers' commands and images."""
    return bool(env.published_ports) or bool(env.command) or env.interface not in INTERFACE_DEFAULT_URLS


def container_command(env: Environment, request: ServiceRequest) -> list[str] | None:
    """The container's command, or None to keep the image's own."""
    if env.command:
        return _teacher_command(env.command, request.login, reads_token=bool(request.token_secret_id))
    if runs_singleuser(env):
        singleuser = f"jupyterhub-singleuser --ip=0.0.0.0 --port={int(request.server_port)}"
        if request.token_secret_id:
            # the token is read from the secret file as the server starts: it never sits in the spec, where
            # `docker service inspect` and `docker inspect` would show it
            return ["/bin/sh", "-c", f"{READ_HUB_TOKEN} && exec {singleuser}"]
        return singleuser.split()
    return None


def container_env(env: Environment, request: ServiceRequest) -> dict[str, str]:
    variables = dict(env.env)
    variables.update(request.hub_env)
    if request.token_secret_id or not env.serves_http:
        # read from HUB_TOKEN_FILE by the command, or useless (nothing talks to the hub without a web server);
        # only an image's own web command still gets it as a variable, as stock spawners give it
        for name in HUB_TOKEN_VARIABLES:
            variables.pop(name, None)
    variables.update(MYDOCKER_USERNAME=request.login, MYDOCKER_ENVIRONMENT=env.slug)
    if request.secret_id:
        variables["MYDOCKER_PASSWORD_FILE"] = PASSWORD_FILE
    if env.interface in INTERFACE_DEFAULT_URLS:
        variables.setdefault("JUPYTERHUB_DEFAULT_URL", INTERFACE_DEFAULT_URLS[env.interface])
    return variables


def labels(env: Environment, request: ServiceRequest) -> dict[str, str]:
    result = {
        MANAGED_LABEL: request.hub_label,
        USER_LABEL: request.username,
        SERVER_LABEL: request.server_name,
        ENVIRONMENT_LABEL: env.slug,
    }
    if request.http_host_port:
        result[HTTP_PORT_LABEL] = str(request.server_port)
    result.update(request.extra_labels)
    return result


def mounts(env: Environment, request: ServiceRequest) -> list[Mount]:
    if env.home.type == "none" or not request.home_volume:
        return []
    driver = None
    if request.home_volume_driver != "local" or request.home_volume_options:
        driver = DriverConfig(request.home_volume_driver, dict(request.home_volume_options))
    return [
        Mount(
            target=env.home.mount_path,
            source=request.home_volume,
            type="volume",
            labels={MANAGED_LABEL: request.hub_label, USER_LABEL: request.username},
            driver_config=driver,
        )
    ]


def home_volume_options(templates: dict[str, str], *, volume: str, username: str, size: int | None) -> dict[str, str]:
    """The home volume driver's options with ``{volume}``, ``{username}`` and ``{size}`` (bytes) filled in.

    An option that needs ``{size}`` is left out for an environment that gives no ``home.size``.
    """
    options = {}
    for name, template in templates.items():
        if "{size}" in template and size is None:
            continue
        value = template.replace("{volume}", volume).replace("{username}", username)
        options[name] = value.replace("{size}", str(size))
    return options


def resources(env: Environment, request: ServiceRequest) -> Resources:
    res = env.resources
    return Resources(
        cpu_limit=_nano(res.cpu_limit),
        cpu_reservation=_nano(res.cpu_reservation),
        mem_limit=res.memory_limit,
        mem_reservation=res.memory_reservation,
        generic_resources={request.gpu_resource_kind: res.gpus} if res.gpus else None,
    )


def placement(env: Environment, request: ServiceRequest) -> Placement:
    constraints = []
    if env.resources.node_pool:
        constraints.append(f"node.labels.{request.node_pool_label} == {env.resources.node_pool}")
    return Placement(constraints=constraints or None)


def endpoint(env: Environment, request: ServiceRequest) -> EndpointSpec:
    ports = {}
    if request.http_host_port:
        ports[request.http_host_port] = (request.server_port, "tcp", "host")
    for container_port, host_port in request.tcp_host_ports.items():
        ports[host_port] = (container_port, "tcp", "host")
    return EndpointSpec(ports=ports or None)


def secret_file_owner(run_as_user: str | None) -> dict:
    """Owner and mode of the secret files, so that the container's user (and only it) can read them.

    ``"uid[:gid]"``: that user's, mode 0400. The image's own user (``None``) or a user name, whose uid the
    hub cannot know: root's, mode 0444 (readable inside that one user's container only).
    """
    uid, _, gid = (run_as_user or "").partition(":")
    if uid.isdigit() and (not gid or gid.isdigit()):
        return {"uid": uid, "gid": gid or "0", "mode": 0o400}
    return {"uid": "0", "gid": "0", "mode": 0o444}


def build_service_spec(env: Environment, request: ServiceRequest) -> dict:
    """Keyword arguments for ``docker.APIClient.create_service``."""
    service_labels = labels(env, request)
    secrets = []
    for secret_id, secret_name, path in (
        (request.secret_id, request.secret_name, PASSWORD_FILE),
        (request.token_secret_id, request.token_secret_name, HUB_TOKEN_FILE),
    ):
        if secret_id:
            secrets.append(
                SecretReference(
                    secret_id=secret_id,
                    secret_name=secret_name,
                    filename=path.rsplit("/", 1)[1],
                    **secret_file_owner(request.run_as_user),
                )
            )
    container = ContainerSpec(
        image=env.image,
        command=container_command(env, request),
        env=container_env(env, request),
        user=request.run_as_user,
        mounts=mounts(env, request),
        labels=service_labels,
        secrets=secrets or None,
        workdir=env.home.mount_path if env.home.type != "none" else None,
        cap_drop=list(request.drop_capabilities) or None,
        init=True,
    )
    if request.no_new_privileges:
        # Swarm API >= 1.44 honours this; older engines ignore the unknown field (the spawner logs that)
        container["Privileges"] = {"NoNewPrivileges": True}
    task = TaskTemplate(
        container_spec=container,
        resources=resources(env, request),
        placement=placement(env, request),
        restart_policy=RestartPolicy(condition="any", delay=2_000_000_000, max_attempts=0),
        networks=list(request.networks) or None,
    )
    return dict(
        name=request.service_name,
        task_template=task,
        endpoint_spec=endpoint(env, request),
        labels=service_labels,
    )
