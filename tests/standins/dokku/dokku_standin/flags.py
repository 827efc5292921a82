"""Flag parsing the way Dokku's Go subcommands do it (spf13/pflag, ExitOnError).

Flags may come before, between or after positional arguments; `--name=value` and
`--name value` both work; `--` ends the flags. An unknown flag prints pflag's message and
usage on stderr and exits 2.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from .out import DokkuExit


@dataclass
class FlagSet:
    name: str
    bools: dict[str, str] = field(default_factory=dict)  # flag -> help
    strings: dict[str, tuple[str, str]] = field(default_factory=dict)  # flag -> (default, help)

    def usage(self) -> str:
        lines = [f"Usage of {self.name}:"]
        for flag, (default, text) in sorted(self.strings.items()):
            shown = f' (default "{default}")' if default else ""
            lines.append(f"      --{flag} string   {text}{shown}")
        for flag, text in sorted(self.bools.items()):
            lines.append(f"      --{flag}   {text}")
        return "\n".join(lines)

    def _die(self, message: str) -> DokkuExit:
        sys.stderr.write(f"{message}\n{self.usage()}\n")
        sys.stderr.flush()
        return DokkuExit(2)

    def parse(self, argv: list[str]) -> tuple[dict[str, object], list[str]]:
        values: dict[str, object] = {name: False for name in self.bools}
        values.update({name: default for name, (default, _) in self.strings.items()})
        positional: list[str] = []
        index = 0
        while index < len(argv):
            arg = argv[index]
            index += 1
            if arg == "--":
                positional.extend(argv[index:])
                break
            if arg.startswith("--") and len(arg) > 2:
                name, eq, inline = arg[2:].partition("=")
                if name in self.bools:
                    if eq:
                        if inline.lower() not in ("true", "false", "1", "0", "t", "f"):
                            raise self._die(
                                f'invalid argument "{inline}" for "--{name}" flag:'
                                f' strconv.ParseBool: parsing "{inline}": invalid syntax'
                            )
                        values[name] = inline.lower() in ("true", "1", "t")
                    else:
                        values[name] = True
                elif name in self.strings:
                    if eq:
                        values[name] = inline
                    elif index < len(argv):
                        values[name] = argv[index]
                        index += 1
                    else:
                        raise self._die(f"flag needs an argument: --{name}")
                else:
                    raise self._die(f"unknown flag: --{name}")
            elif arg.startswith("-") and len(arg) > 1:
                raise self._die(f"unknown shorthand flag: '{arg[1]}' in {arg}")
            else:
                positional.append(arg)
        return values, positional
