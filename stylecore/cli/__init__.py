"""``python -m stylecore COMMAND …``.

Each subcommand is a module in this package that defines ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``; modules are discovered, so
adding a command touches no shared file. The CLI parses arguments and builds
configuration; the library does the work.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
from collections.abc import Sequence

from stylecore import __version__


def _command_modules() -> dict[str, object]:
    modules = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        if info.name.startswith("_"):
            continue
        modules[info.name.replace("_", "-")] = importlib.import_module(f"{__name__}.{info.name}")
    return modules


def make_parser() -> tuple[argparse.ArgumentParser, dict[str, object]]:
    parser = argparse.ArgumentParser(
        prog="python -m stylecore",
        description="Style transfer, metrics, GAN training and weights for stylestudy.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"stylecore {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    modules = _command_modules()
    for name, module in modules.items():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
    return parser, modules


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser, modules = make_parser()
    args = parser.parse_args(argv)
    try:
        return int(modules[args.command].run(args) or 0)
    except (ValueError, OSError, RuntimeError) as exc:
        # Expected failures (bad input, missing weights) become one clear line.
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
