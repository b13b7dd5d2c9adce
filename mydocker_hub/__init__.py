"""mydocker-hub: teacher-defined environments on Docker Swarm, for JupyterHub."""
