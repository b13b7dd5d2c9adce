"""The settings of :class:`~mydocker_hub.spawner.SwarmEnvironmentSpawner`, set as ``c.SwarmEnvironmentSpawner.<name>``.

Kept apart from the spawner's behaviour so that each file has one job; the spawner inherits them.
"""

from __future__ import annotations

from traitlets import Bool, Dict, Float, Integer, List, Unicode, validate
from traitlets.config import LoggingConfigurable

from .swarm.ports import parse_port_range


class SwarmEnvironmentSettings(LoggingConfigurable):
    """Every setting of the environment spawner (an admin sets them on ``SwarmEnvironmentSpawner``)."""

    environments_dir = Unicode(
        "environments",
        config=True,
        help="""Directory of environment profiles (one YAML file each, kept in git by teachers).

        Re-read whenever a file changes, no restart needed. Default: ``environments``
        (relative to the hub's working directory). Example: ``/srv/mydocker/environments``.
        """,
    )
    service_prefix = Unicode(
        "mydocker",
        config=True,
        help="""Prefix of every Swarm service, volume and secret this hub creates, and value of their
        ``org.mydocker.managed`` label. Two hubs sharing one Swarm need different prefixes: each hub's
        sweep (``sweep_interval``) removes the services of its prefix whose server it lists as stopped.
        Default: ``mydocker``. Must be a lowercase slug, e.g. ``mydocker-staging``.""",
    )
    host_port_range = Unicode(
        "30000-32767",
        config=True,
        help="""Node ports (``LOW-HIGH``) for host-mode publishing of SSH/TCP ports, and of each server's
        HTTP port unless ``web_port_range`` is set. Open them from the proxy to the nodes, and to users.
        Default: ``30000-32767``.""",
    )
    web_port_range = Unicode(
        "",
        config=True,
        help="""Node ports (``LOW-HIGH``) for each server's HTTP port (the proxy's way to JupyterLab, VS Code,
        the desktop or a teacher's web server), apart from the SSH/TCP ports: a firewall can then open
        ``host_port_range`` to users and this range only to the proxy (so it should not overlap
        ``host_port_range``). Default (empty): the HTTP ports come from ``host_port_range`` too. Example:
        ``20000-29999``.""",
    )
    node_address = Unicode(
        "",
        config=True,
        help="""Address the hub and proxy use to reach published ports on nodes. Default (empty): each
        node's own Swarm address (``docker node inspect`` Status.Addr). Example: ``10.0.0.5``.""",
    )
    public_host = Unicode(
        "",
        config=True,
        help="""Host name shown to users for SSH/TCP connections (``ssh -p PORT login@HOST``).
        Default (empty): the node address, or the host of the hub page when that address is loopback.
        Example: ``mydocker.example.edu``.""",
    )
    run_as_user = Unicode(
        "1000:100",
        config=True,
        allow_none=True,
        help="""``UID:GID`` every environment runs as (images follow the jovyan convention, uid 1000).
        Default: ``1000:100``. ``None`` keeps the image's own user; do that only for trusted images. The
        password and hub-token files belong to that uid (mode 0400); with ``None`` or a user name they are
        root's with mode 0444, readable by whoever runs in that one container.""",
    )
    drop_capabilities = List(
        Unicode(),
        default_value=["ALL"],
        config=True,
        help="""Linux capabilities removed from every container. Default: ``["ALL"]``.""",
    )
    docker_workers = Integer(
        16,
        config=True,
        help="""Docker API calls that may run at once (a shared thread pool; stock DockerSpawner uses 1).
        Default: 16.""",
    )
    watch_interval = Float(
        5.0,
        config=True,
        help="""Seconds between listings of Swarm services and tasks when no start is waiting.
        Default: 5. Every spawner reads the shared listing, so poll costs no Docker call.""",
    )
    sweep_interval = Float(
        600.0,
        config=True,
        help="""Seconds between sweeps of what stopped servers may leave behind: Swarm secrets whose service
        is gone, and services of servers the hub's database lists as stopped (a stop during which the engine
        failed: JupyterHub marks the server stopped anyway). Either is removed when two sweeps in a row find
        it so; a service of a user or server this database does not know is left alone. Default: 600.""",
    )
    removal_settle_time = Float(
        1.0,
        config=True,
        help="""Seconds without another stop before the engine is asked to remove stopped servers' services,
        all together (at most 10 s, or this setting if longer, after the first one waiting). JupyterHub takes a
        server off the proxy and revokes its tokens at once; its container runs on until the removal (an open
        SSH session or terminal ends then) and keeps its reservations. The containers' shutdown, which takes
        the node's CPUs for seconds when a class stops, then no longer slows the hub's own work of stopping
        the other servers. A start of the same server replaces the old service at once. 0 removes each
        service as its server stops. Default: 1.""",
    )
    watch_fast_interval = Float(
        0.25,
        config=True,
        help="""Seconds between listings while some start is waiting for Swarm. Default: 0.25.""",
    )
    start_attempts = Integer(
        2,
        config=True,
        help="""Containers that may fail while a server starts before the start fails with the last one's
        reason (Swarm replaces a failed container by itself). A missing image, running out of memory and a
        taken port fail at the first. Default: 2, so that a server that exits once because something it
        needed was briefly unreachable still starts; 1 fails at the first failure of any kind.""",
    )
    running_servers_per_student = Integer(
        3,
        config=True,
        help="""Environments a student may have running (or starting) at once; starting one more is refused
        with a message that names those running and says to stop one. It counts the student's servers
        whoever starts them (an administrator acting for them too). Teachers and administrators are not
        capped, nor an environment's owners, editors and viewers for that environment. Default: 3 (a
        class's lab, plus a desktop or a terminal, plus one spare), so that one student cannot take a node's
        share of a whole class; 0: no cap.""",
    )
    concurrent_starts = Integer(
        0,
        config=True,
        help="""Servers that may be starting at once, from the creation of their service until they answer;
        the others wait in line, first come first served, and their progress page says how many are ahead.
        A class asking at once then gets its first servers in seconds rather than all of them together at
        the end (on 2 cores, 100 servers: half ready after about 1 minute instead of 2, the last as before).
        Default: 0, meaning 2 per CPU of the Swarm's ready nodes; a negative value: no limit.""",
    )
    watch_follow_interval = Float(
        1.0,
        config=True,
        help="""Seconds between listings at most while started servers are probed until they answer, so that
        a container exiting meanwhile is seen before Swarm replaces it (0.05 s times the number of servers being
        probed when that is longer, up to watch_interval: a class starting at once adds no listing). Default: 1.""",
    )
    unschedulable_grace = Float(
        15.0,
        config=True,
        help="""Seconds a task may stay pending because no node has the resources or labels before the
        start fails with that reason (Swarm retries meanwhile). Default: 15.""",
    )
    gpu_resource_kind = Unicode(
        "NVIDIA-GPU",
        config=True,
        help="""Swarm generic resource kind reserved for ``resources.gpus`` (as declared in the nodes'
        ``daemon.json`` node-generic-resources). Default: ``NVIDIA-GPU``.""",
    )
    home_volume_driver = Unicode(
        "local",
        config=True,
        help="""Docker volume driver of the home volumes. Default: ``local`` (the node's disk: on several
        nodes, give it options for shared storage, see ``home_volume_driver_options``).""",
    )
    home_volume_driver_options = Dict(
        value_trait=Unicode(),
        config=True,
        help="""Options Docker creates each home volume with (at its first start; an existing volume keeps
        its own). Values may use ``{volume}`` (the volume's name), ``{username}`` and ``{size}`` (the
        environment's ``home.size`` in bytes; an option using it is left out when the environment gives no
        size; a global home, shared by a user's environments, gets the size of the one that creates it).
        NFS shared by all nodes (the directory must exist on the server): ``{"type": "nfs", "o":
        "addr=nfs.example.fr,rw,nfsvers=4.2", "device": ":/homes/{volume}"}``; a size limit with the local
        driver on XFS with project quotas: ``{"size": "{size}"}``. Default: none.""",
    )
    node_pool_label = Unicode(
        "org.mydocker.pool",
        config=True,
        help="""Node label matched by ``resources.node_pool`` (``docker node update --label-add
        org.mydocker.pool=gpu NODE``). Default: ``org.mydocker.pool``.""",
    )
    no_new_privileges = Bool(
        True,
        config=True,
        help="""Ask Swarm for ``no-new-privileges`` (honoured by engines with API >= 1.44; older engines
        need ``"no-new-privileges": true`` in the nodes' daemon.json, which scripts/ensure-system.sh and
        ansible/site.yml write; a warning at the first start says when neither applies). Default: True.""",
    )
    session_early_access = Integer(
        30 * 60,
        config=True,
        help="""Seconds before a class session's start from which its students see the environment (and
        may start it, unless the session blocks starts before its start). Default: 1800.""",
    )
    frame_ancestors = List(
        Unicode(),
        config=True,
        help="""Origins (``https://moodle.example.fr``) allowed to frame the servers, passed to images as
        ``MYDOCKER_FRAME_ANCESTORS`` (see images/README.md). Set by mydocker_hub.config from the LTI
        platforms whose embedding is enabled. Default: none (same origin only).""",
    )
    credentials_key_file = Unicode(
        "mydocker_crypt_key",
        config=True,
        help="""Key file created on first use when neither MYDOCKER_CRYPT_KEY nor JUPYTERHUB_CRYPT_KEY is set
        (fine for a single hub; set the variable in production). Default: ``mydocker_crypt_key``.""",
    )
    connection_stub_ip = Unicode(
        "127.0.0.1",
        config=True,
        help="""Address of the small in-hub HTTP stub the proxy routes environments without a web
        interface (SSH/TCP only) to; it redirects to their connection page. Default: ``127.0.0.1``.""",
    )
    connection_stub_port = Integer(
        8083,
        config=True,
        help="""Port of that stub (fixed, so routes stay valid across hub restarts). Default: 8083.""",
    )

    port_conflict_attempts = Integer(
        3,
        config=True,
        help="""Attempts with freshly chosen ports when Swarm reports a host port already in use on the node
        (taken by something this hub does not manage). Default: 3.""",
    )

    @validate("host_port_range")
    def _validate_port_range(self, proposal):
        parse_port_range(proposal.value)
        return proposal.value

    @validate("web_port_range")
    def _validate_web_port_range(self, proposal):
        if proposal.value:
            parse_port_range(proposal.value)
        return proposal.value
