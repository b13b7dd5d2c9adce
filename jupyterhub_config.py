"""jupyterhub_config.py of mydocker-hub: declarative; the defaults live in mydocker_hub.config.

Set MYDOCKER_DEMO=1 for the embedded demo (demo accounts, SQLite, everything on one machine).
Site-specific settings go in jupyterhub_config.d/*.py, loaded last.
"""

import os
from pathlib import Path

from mydocker_hub import config as mydocker_config

here = Path(__file__).resolve().parent
c = get_config()  # noqa: F821 (provided by JupyterHub)

mydocker_config.apply(c, base_dir=here, demo=os.environ.get("MYDOCKER_DEMO") == "1")
mydocker_config.load_escape_hatch(c, os.environ.get("MYDOCKER_CONFIG_D", here / "jupyterhub_config.d"))
mydocker_config.finalize(c)
