"""``mydocker-hub``: command-line tools for teachers and admins.

mydocker-hub validate [PATH ...]   check environment files (default: ./environments)
mydocker-hub schema-docs           print the Markdown reference of environment files
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .environments import load_directory, load_file
from .environments.docs import schema_markdown


def _validate(args) -> int:
    paths = args.paths or ["environments"]
    valid = 0
    failed_files: set[str] = set()
    for name in paths:
        path = Path(name)
        if path.is_dir():
            environments, errors = load_directory(path)
            valid += len(environments)
        elif path.exists():
            environment, errors = load_file(path)
            valid += environment is not None
        else:
            print(f"{name}:1: (file): does not exist; give an environment file or directory")
            failed_files.add(name)
            continue
        for error in errors:
            print(error)
            failed_files.add(error.file)
    print(f"{valid} environments valid, {len(failed_files)} files with errors")
    return 1 if failed_files else 0


def _schema_docs(args) -> int:
    sys.stdout.write(schema_markdown())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mydocker-hub", description="mydocker-hub tools")
    commands = parser.add_subparsers(dest="command", required=True)
    validate = commands.add_parser("validate", help="check environment files; print file:line: field: message")
    validate.add_argument("paths", nargs="*", help="environment files or directories (default: environments)")
    validate.set_defaults(run=_validate)
    docs = commands.add_parser("schema-docs", help="print the Markdown reference of environment files")
    docs.set_defaults(run=_schema_docs)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
