"""Environment profiles: the schema, the loader and the live catalogue (the ground floor: imports nothing of ours)."""

from .catalog import EnvironmentCatalog, get_catalog
from .loader import ProfileError, load_directory, load_file, load_schema, load_text
from .model import Environment

__all__ = [
    "Environment",
    "EnvironmentCatalog",
    "ProfileError",
    "get_catalog",
    "load_directory",
    "load_file",
    "load_schema",
    "load_text",
]
