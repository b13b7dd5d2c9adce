"""Configuration file of jupyterhub-idle-culler when run by mydocker-hub (``--config-file``)."""

from mydocker_hub.culling import cull_arbiter

c = get_config()  # noqa: F821 (provided by traitlets when the file is loaded)
c.IdleCuller.cull_arbiter_hook = cull_arbiter
