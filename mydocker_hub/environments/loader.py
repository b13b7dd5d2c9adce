"""Load environment profiles: YAML with line numbers -> JSON Schema -> semantic checks -> Environment.

Every problem becomes a :class:`ProfileError` ``file:line: field: message`` that says what is wrong and what
to write instead. Nothing here raises on bad input: a hostile or broken file only produces errors.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import re
import shlex
import zoneinfo
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import yaml
from jsonschema import Draft202012Validator

from .model import (
    LINK_SCHEMES,
    Access,
    Display,
    Environment,
    Home,
    Link,
    Port,
    Resources,
    Session,
    link_template_is_safe,
)
from .units import parse_cpu, parse_duration, parse_size

MAX_FILE_BYTES = 256 * 1024
#: where a home volume must not be mounted: it would hide the image's system files
SYSTEM_PATHS = ("", "/proc", "/sys", "/dev", "/etc", "/usr", "/bin", "/sbin", "/lib", "/boot", "/run", "/run/secrets")
DEFAULT_TIMEZONE = "Europe/Paris"
SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9-]{0,29}$")
LINK_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
COMMAND_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


@dataclass(frozen=True)
class ProfileError:
    file: str
    line: int
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.field}: {self.message}"


def load_schema() -> dict:
    return json.loads(resources.files(__package__).joinpath("schema.json").read_text())


_VALIDATOR = Draft202012Validator(load_schema())


# -- YAML with positions ----------------------------------------------------------------------------
class _Positions:
    """JSON path (tuple of keys/indices) -> 1-based line, from PyYAML's node tree."""

    def __init__(self, node):
        self.lines: dict[tuple, int] = {}
        self.key_lines: dict[tuple, int] = {}
        if node is not None:
            self._walk(node, ())

    def _walk(self, node, path):
        self.lines[path] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for key_node, value_node in node.value:
                key = key_node.value
                self.key_lines[path + (key,)] = key_node.start_mark.line + 1
                self._walk(value_node, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                self._walk(item, path + (index,))

    def line(self, path: tuple) -> int:
        path = tuple(path)
        while path:
            if path in self.key_lines:
                return self.key_lines[path]
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)


class _NoAliasLoader(yaml.SafeLoader):
    """SafeLoader that refuses anchors/aliases (no "billion laughs") and keeps timestamps as text."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "aliases (*name) are not allowed in environment files; repeat the value", event.start_mark
            )
        return super().compose_node(parent, index)


def field_name(path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(file)"


# -- loading ----------------------------------------------------------------------------------------
def load_file(path) -> tuple[Environment | None, list[ProfileError]]:
    path = Path(path)
    name = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return None, [
                ProfileError(name, 1, "(file)", f"is {size} bytes; an environment file must stay under 256 KiB")
            ]
        raw = path.read_bytes()
    except OSError as e:
        return None, [ProfileError(name, 1, "(file)", f"cannot be read: {e.strerror}")]
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None, [ProfileError(name, 1, "(file)", "is not UTF-8 text; save it as UTF-8")]
    try:
        return load_text(text, name)
    except Exception as e:  # a case this loader does not foresee: this file is refused, the others still load
        return None, [
            ProfileError(
                name,
                1,
                "(file)",
                f"could not be read ({type(e).__name__}: {str(e)[:80]}); simplify the file and tell the hub's admins",
            )
        ]


def load_text(text: str, source_file: str) -> tuple[Environment | None, list[ProfileError]]:
    if len(text.encode("utf-8", "replace")) > MAX_FILE_BYTES:
        return None, [
            ProfileError(source_file, 1, "(file)", "is too large; an environment file must stay under 256 KiB")
        ]
    try:
        node = yaml.compose(text, Loader=_NoAliasLoader)
        data = yaml.load(text, Loader=_NoAliasLoader) if node is not None else None
    except RecursionError:
        return None, [ProfileError(source_file, 1, "(file)", "is nested too deeply to be an environment file")]
    except ValueError as e:  # e.g. an integer of thousands of digits
        return None, [ProfileError(source_file, 1, "(file)", f"holds a value that cannot be read: {str(e)[:80]}")]
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None) or getattr(e, "context_mark", None)
        line = mark.line + 1 if mark else 1
        problem = getattr(e, "problem", None) or str(e)
        return None, [
            ProfileError(source_file, line, "(file)", f"is not valid YAML: {problem}; check indentation and quotes")
        ]
    positions = _Positions(node)
    duplicates = _duplicate_keys(node, source_file)
    if duplicates:
        return None, duplicates
    if data is None:
        return None, [ProfileError(source_file, 1, "(file)", "is empty; write at least `title:` and `image:`")]
    if not isinstance(data, dict):
        return None, [
            ProfileError(
                source_file, 1, "(file)", "must be a mapping of fields (title: ..., image: ...), not a list or a value"
            )
        ]
    data = _normalise(data)
    errors = _schema_errors(data, positions, source_file)
    if errors:
        errors += _conversion_errors_beside(errors, data, positions, source_file)
        return None, sorted(errors, key=lambda error: error.line)
    slug = data.get("slug") or _slug_from_file(source_file)
    if not SLUG_PATTERN.match(slug):
        return None, [
            ProfileError(
                source_file,
                positions.line(("slug",)),
                "slug",
                f"{slug!r} (from the file name) is not a valid slug; add `slug:` with 1-30 lowercase letters, "
                "digits or dashes, e.g. python-intro",
            )
        ]
    environment, errors = _build(data, slug, positions, source_file)
    return (None, errors) if errors else (environment, [])


def _conversion_errors_beside(
    schema_errors: list[ProfileError], data: dict, positions: _Positions, source_file: str
) -> list[ProfileError]:
    """Values the schema lets through but that do not convert (``cpu_limit: two``, ``idle_timeout: soon``),
    found even when the file has schema errors too: one run of ``validate`` shows every mistake."""
    try:
        _, errors = _build(data, "checking", positions, source_file)
    except Exception:  # what the schema refused may trip the conversions: those fields are already reported
        return []
    reported = {error.field for error in schema_errors}
    return [error for error in errors if error.field not in reported]


def _duplicate_keys(node, source_file: str, path: tuple = ()) -> list[ProfileError]:
    """A field written twice in one mapping: YAML would keep the last one silently."""
    errors = []
    if isinstance(node, yaml.MappingNode):
        first_lines: dict[str, int] = {}
        for key_node, value_node in node.value:
            key = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
            line = key_node.start_mark.line + 1
            if key in first_lines:
                errors.append(
                    ProfileError(
                        source_file,
                        line,
                        field_name(path + (key,)),
                        f"is written twice (lines {first_lines[key]} and {line}); keep one",
                    )
                )
            elif key is not None:
                first_lines[key] = line
            errors += _duplicate_keys(value_node, source_file, path + (key,))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            errors += _duplicate_keys(item, source_file, path + (index,))
    return errors


def _slug_from_file(source_file: str) -> str:
    return Path(source_file).stem


def _normalise(data: dict) -> dict:
    """YAML turns unquoted timestamps into datetimes: keep them as ISO text for the schema."""

    def convert(value):
        if isinstance(value, dt.datetime | dt.date):
            return value.isoformat()
        if isinstance(value, dict):
            return {str(k) if not isinstance(k, str) else k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    return convert(data)


def _properties_at(path) -> dict:
    schema = _VALIDATOR.schema
    for part in path:
        if isinstance(part, int):
            schema = schema.get("items", {})
        else:
            schema = schema.get("properties", {}).get(part, {})
    return schema.get("properties", {})


def _schema_errors(data, positions: _Positions, source_file: str) -> list[ProfileError]:
    errors = []
    for error in sorted(_VALIDATOR.iter_errors(data), key=lambda e: positions.line(tuple(e.absolute_path))):
        path = tuple(error.absolute_path)
        message = _explain(error, path)
        if error.validator == "additionalProperties":
            for key in _unknown_keys(error):
                known = list(_properties_at(path))
                close = difflib.get_close_matches(key, known, n=1)
                hint = f"did you mean `{close[0]}`?" if close else f"valid fields here: {', '.join(sorted(known))}"
                errors.append(
                    ProfileError(
                        source_file, positions.line(path + (key,)), field_name(path + (key,)), f"unknown field; {hint}"
                    )
                )
            continue
        if error.validator == "required":
            missing = re.search(r"'([^']+)' is a required property", error.message)
            field = field_name(path + (missing.group(1),)) if missing else field_name(path)
            errors.append(ProfileError(source_file, positions.line(path), field, message))
            continue
        errors.append(ProfileError(source_file, positions.line(path), field_name(path), message))
    return errors


def _unknown_keys(error) -> list[str]:
    allowed = set(error.schema.get("properties", {}))
    return [key for key in error.instance if key not in allowed]


def _explain(error, path) -> str:
    value = error.instance
    shown = repr(value) if not isinstance(value, dict | list) else type(value).__name__
    if len(shown) > 60:
        shown = shown[:57] + "..."
    validator = error.validator
    if validator == "required":
        return "is missing; add it (see docs/environments.md)"
    if validator == "enum":
        return f"{shown} is not allowed; write one of: {', '.join(map(str, error.validator_value))}"
    if validator == "oneOf" and isinstance(value, dict):
        for option in error.validator_value:
            languages = option.get("properties", {}) if option.get("type") == "object" else {}
            unknown = sorted(str(key) for key in value if key not in languages)
            if languages and unknown:
                return (
                    f"{', '.join(unknown)} is not a language of the hub; "
                    f"write one text per language among: {', '.join(languages)}"
                )
    if validator in ("type", "oneOf"):
        expected = error.schema.get("type") or "a text, or one text per language ({en: ..., fr: ...})"
        if isinstance(expected, list):
            expected = " or ".join(expected)
        return f"{shown} has the wrong type; write {expected}"
    if validator == "pattern":
        description = error.schema.get("description", "")
        return f"{shown} is not valid here. {description}".strip()
    if validator in ("minimum", "maximum"):
        return (
            f"{shown} is out of range; write a value {'>=' if validator == 'minimum' else '<='} {error.validator_value}"
        )
    if validator in ("minLength", "minItems", "minProperties"):
        return "is empty; give a value or remove the field"
    if validator == "uniqueItems":
        return "has the same name twice; list each name once"
    if validator == "propertyNames":
        return f"{shown} is not a valid variable name; use letters, digits and _ (not starting with a digit)"
    return error.message


def _build(data: dict, slug: str, positions: _Positions, source_file: str):
    errors: list[ProfileError] = []

    def err(path, message):
        errors.append(ProfileError(source_file, positions.line(path), field_name(path), message))

    def convert(path, parser, value):
        try:
            return parser(value)
        except ValueError as e:
            err(path, str(e))
            return None

    def localized(value) -> dict[str, str]:
        if value is None:
            return {}
        if isinstance(value, str):
            return {"en": value}
        result = dict(value)
        if "en" not in result:
            result["en"] = next(iter(result.values()))
        return result

    raw_resources = data.get("resources", {})
    resources_ = Resources(
        cpu_limit=convert(("resources", "cpu_limit"), parse_cpu, raw_resources["cpu_limit"])
        if "cpu_limit" in raw_resources
        else None,
        cpu_reservation=(
            convert(("resources", "cpu_reservation"), parse_cpu, raw_resources["cpu_reservation"])
            if "cpu_reservation" in raw_resources
            else None
        ),
        memory_limit=(
            convert(("resources", "memory_limit"), parse_size, raw_resources["memory_limit"])
            if "memory_limit" in raw_resources
            else None
        ),
        memory_reservation=(
            convert(("resources", "memory_reservation"), parse_size, raw_resources["memory_reservation"])
            if "memory_reservation" in raw_resources
            else None
        ),
        gpus=raw_resources.get("gpus", 0),
        node_pool=raw_resources.get("node_pool"),
    )
    if resources_.cpu_limit and resources_.cpu_reservation and resources_.cpu_reservation > resources_.cpu_limit:
        err(
            ("resources", "cpu_reservation"),
            f"is more than cpu_limit ({resources_.cpu_limit}); lower it or raise the limit",
        )
    if (
        resources_.memory_limit
        and resources_.memory_reservation
        and resources_.memory_reservation > resources_.memory_limit
    ):
        err(("resources", "memory_reservation"), "is more than memory_limit; lower it or raise the limit")

    raw_home = data.get("home", {})
    home = Home(
        type=raw_home.get("type", "global"),
        mount_path=raw_home.get("mount_path", "/home/jovyan"),
        size=convert(("home", "size"), parse_size, raw_home["size"]) if "size" in raw_home else None,
    )
    segments = home.mount_path.split("/")
    if not home.mount_path.startswith("/") or "//" in home.mount_path or ".." in segments or "." in segments:
        err(("home", "mount_path"), f"{home.mount_path!r} is not a plain absolute path; write e.g. /home/jovyan")
    elif home.mount_path.rstrip("/") in SYSTEM_PATHS or home.mount_path.startswith("/run/secrets/"):
        err(
            ("home", "mount_path"),
            f"{home.mount_path!r} would hide system files; use the image user's home, e.g. /home/jovyan",
        )

    ports = tuple(
        Port(p["name"], p["port"], p.get("type", "http"), p.get("required", True)) for p in data.get("ports", [])
    )
    seen: dict[int, int] = {}
    for index, port in enumerate(ports):
        if port.port in seen:
            err(
                ("ports", index, "port"),
                f"port {port.port} is already declared by ports[{seen[port.port]}]; list each port once",
            )
        seen.setdefault(port.port, index)

    interface = data.get("interface", "jupyterlab")
    command = data.get("command", ())
    if isinstance(command, str):
        try:
            command = shlex.split(command)
        except ValueError as e:
            err(("command",), f'cannot be split into words ({e}); write it as a list: ["prog", "arg"]')
            command = ()
    command = tuple(command)
    for index, arg in enumerate(command):
        for placeholder in COMMAND_PLACEHOLDER.findall(arg):
            if placeholder not in ("username", "password"):
                err(
                    ("command",),
                    f"unknown placeholder {{{placeholder}}} in word {index + 1}; "
                    "only {username} and {password} exist",
                )
    if interface == "ssh" and not any(p.type == "ssh" for p in ports):
        err(("interface",), "is ssh but no port has type ssh; add e.g. ports: [{name: SSH, port: 2222, type: ssh}]")
    if interface == "custom" and not command:
        err(("interface",), "is custom but there is no `command`; add the command that starts your program")

    variables = {}
    for key, value in data.get("env", {}).items():
        if key.upper().startswith(("JUPYTERHUB_", "MYDOCKER_")):
            err(("env", key), "names starting with JUPYTERHUB_ or MYDOCKER_ are set by the hub; choose another name")
        variables[key] = str(value).lower() if isinstance(value, bool) else str(value)

    raw_display = data.get("display", {})
    links = tuple(Link(link["title"], link["url"]) for link in raw_display.get("links", []))
    declared = {p.port for p in ports}
    for index, link in enumerate(links):
        if not link_template_is_safe(link.url):
            err(
                ("display", "links", index, "url"),
                f"{link.url[:40]!r} cannot be a link button; start it with "
                + ", ".join(f"{scheme}://" for scheme in LINK_SCHEMES)
                + ", / or a placeholder like {SERVER_URL} or {HOST[8888]}",
            )
        for placeholder in LINK_PLACEHOLDER.findall(link.url):
            host = re.fullmatch(r"HOST\[['\"]?(\d+)['\"]?\]", placeholder)
            if host:
                if int(host.group(1)) not in declared:
                    err(
                        ("display", "links", index, "url"),
                        f"{{{placeholder}}} names port {host.group(1)}, which is not in `ports`; declare it there",
                    )
            elif placeholder not in ("PASSWORD", "USERNAME", "SERVER_URL"):
                err(
                    ("display", "links", index, "url"),
                    f"unknown placeholder {{{placeholder}}}; "
                    "use {HOST[<port>]}, {PASSWORD}, {USERNAME} or {SERVER_URL}",
                )
    # MyDocker's {HOST['8888']} spelling is accepted and stored in ours
    links = tuple(Link(link.title, re.sub(r"\{HOST\[['\"](\d+)['\"]\]\}", r"{HOST[\1]}", link.url)) for link in links)

    sessions = []
    for index, raw in enumerate(data.get("sessions", [])):
        start = convert(("sessions", index, "start"), _parse_time, raw["start"])
        end = convert(("sessions", index, "end"), _parse_time, raw["end"])
        if start and end and end <= start:
            err(("sessions", index, "end"), "is not after start; write an end later than the start")
        if start and end:
            sessions.append(
                Session(
                    start=start,
                    end=end,
                    students=raw["students"],
                    block_before_start=raw.get("block_before_start", False),
                    stop_at_end=raw.get("stop_at_end", False),
                    warn_before_end=raw.get("warn_before_end", 10),
                    groups=tuple(raw.get("groups", ())),
                )
            )

    idle = convert(("idle_timeout",), parse_duration, data["idle_timeout"]) if "idle_timeout" in data else 20 * 60
    lifetime = convert(("max_lifetime",), parse_duration, data["max_lifetime"]) if "max_lifetime" in data else None
    raw_access = data.get("access", {})
    if errors:
        return None, errors
    environment = Environment(
        slug=slug,
        title=localized(data["title"]),
        image=data["image"],
        description=localized(data.get("description")),
        interface=interface,
        command=command,
        ports=ports,
        resources=resources_,
        home=home,
        env=variables,
        idle_timeout=idle,
        max_lifetime=lifetime,
        status=data.get("status", "ready"),
        access=Access(
            groups=tuple(raw_access.get("groups", ())),
            owners=tuple(raw_access.get("owners", ())),
            editors=tuple(raw_access.get("editors", ())),
            viewers=tuple(raw_access.get("viewers", ())),
        ),
        display=Display(
            show_username=raw_display.get("show_username", False),
            show_password=raw_display.get("show_password", False),
            links=links,
        ),
        sessions=tuple(sessions),
        software=tuple(data.get("software", ())),
        source_file=source_file,
        slug_line=positions.line(("slug",)) if "slug" in data else 1,
    )
    return environment, []


def default_timezone() -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(os.environ.get("TZ") or DEFAULT_TIMEZONE)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo(DEFAULT_TIMEZONE)


SESSION_YEARS = range(2000, 2200)  # the dates a class may have: the hub adds and subtracts leads and warnings


def _parse_time(value: str) -> dt.datetime:
    try:
        moment = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{value!r} is not a date and time; write e.g. 2026-01-12T08:30:00+01:00") from None
    if moment.year not in SESSION_YEARS:
        raise ValueError(
            f"{value!r} is not a date between {SESSION_YEARS.start} and {SESSION_YEARS.stop - 1}; "
            "write the class's date, e.g. 2026-01-12T08:30:00+01:00"
        )
    return moment if moment.tzinfo else moment.replace(tzinfo=default_timezone())


def merge_profiles(loaded) -> tuple[dict[str, Environment], list[ProfileError]]:
    """Gather ``(file name, environment or None, errors)`` of each file; a slug used twice is an error."""
    environments: dict[str, Environment] = {}
    errors: list[ProfileError] = []
    for name, environment, file_errors in loaded:
        errors.extend(file_errors)
        if environment is None:
            continue
        if environment.slug in environments:
            first = environments[environment.slug].source_file
            errors.append(
                ProfileError(
                    name,
                    environment.slug_line,
                    "slug",
                    f"{environment.slug!r} is already used by {first}; choose another slug",
                )
            )
            continue
        environments[environment.slug] = environment
    return environments, errors


def load_directory(directory) -> tuple[dict[str, Environment], list[ProfileError]]:
    return merge_profiles((str(path), *load_file(path)) for path in profile_files(directory))


def profile_files(directory) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        return []
    return sorted(
        path
        for path in directory.iterdir()
        if path.suffix in (".yaml", ".yml") and not path.name.startswith((".", "_")) and path.is_file()
    )
