"""Role variable docs from one source: each role's meta/argument_specs.yml.

``python -m tools.role_docs`` (``make role-docs``) rewrites the part of every
``roles/<role>/README.md`` between the BEGIN/END markers; ``--check`` only reports.
``drift()`` lists every place that disagrees with the specs: a README section that is not
what the specs generate, a defaults/main.yml entry that differs from its spec'd default or
has no spec, and an inventory example (commented or not) in
``inventories/<target>/group_vars/*.yml`` that names an unknown variable or a value the
spec refuses. tests/roles/test_role_docs.py fails on any of them.

A short script of ours rather than aar-doc: the drift test has to render the section
exactly as the generator does, and has to read defaults and inventory comments, which
aar-doc does not; PyYAML and ansible-core (already in the tooling) are all it needs.

Spec defaults are documentation only; the value a play gets always comes from
defaults/main.yml ("The actual default for the role variable will always come from the
role defaults": https://docs.ansible.com/ansible/latest/playbook_guide/
playbooks_reuse_roles.html#specification-format), which is why the two must agree.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BEGIN = (
    "<!-- BEGIN role-docs: generated from meta/argument_specs.yml by `make role-docs`;"
    " edit the specs, not this section -->"
)
END = "<!-- END role-docs -->"
TEMPLATED = re.compile(r"{{|{%")
# A commented example starts with `# <name>: ...` (a lowercase identifier with an
# underscore, so prose such as "# Add-ons: ..." is not taken for one) and goes on with
# comment lines indented further (`#   - item`).
EXAMPLE_START = re.compile(r"^#\s?([a-z][a-z0-9]*_[a-z0-9_]*):(\s|$)")
EXAMPLE_CONTINUATION = re.compile(r"^#\s{2,}\S")
# Connection variables Ansible itself reads are not role variables.
ANSIBLE_VARIABLE = re.compile(r"^ansible_")


@dataclass(frozen=True)
class Role:
    name: str
    path: Path

    @property
    def specs(self) -> dict:
        data = yaml.safe_load((self.path / "meta" / "argument_specs.yml").read_text())
        return data["argument_specs"]

    @property
    def options(self) -> dict:
        return self.specs.get("main", {}).get("options", {}) or {}

    @property
    def defaults(self) -> dict:
        path = self.path / "defaults" / "main.yml"
        return (yaml.safe_load(path.read_text()) or {}) if path.exists() else {}

    @property
    def readme(self) -> Path:
        return self.path / "README.md"


def roles(root: Path = ROOT) -> list[Role]:
    return [
        Role(p.parent.parent.name, p.parent.parent)
        for p in sorted((root / "roles").glob("*/meta/argument_specs.yml"))
    ]


# -- rendering -----------------------------------------------------------------------------

_MARKUP = [
    (re.compile(r"L\(([^,)]+),\s*([^)]+)\)"), r"[\1](\2)"),
    (re.compile(r"U\(([^)]+)\)"), r"<\1>"),
    (re.compile(r"B\(([^)]+)\)"), r"**\1**"),
    (re.compile(r"I\(([^)]+)\)"), r"*\1*"),
    (re.compile(r"[CVO]\(([^)]+)\)"), r"`\1`"),
]


def markdown(text: str | list[str]) -> str:
    """Ansible doc markup (C(), I(), B(), U(), L(), O(), V()) as Markdown, one line."""
    lines = text if isinstance(text, list) else [text]
    out = " ".join(" ".join(str(line).split()) for line in lines)
    for pattern, replacement in _MARKUP:
        out = pattern.sub(replacement, out)
    return out.replace("|", "\\|")


def templated(value) -> bool:
    """True when a value (or anything inside it) is a Jinja template."""
    if isinstance(value, str):
        return bool(TEMPLATED.search(value))
    if isinstance(value, dict):
        return any(templated(v) for v in value.values())
    if isinstance(value, list):
        return any(templated(v) for v in value)
    return False


def inline(value) -> str:
    return "`" + json.dumps(value, ensure_ascii=False).replace("|", "\\|") + "`"


def type_of(option: dict) -> str:
    kind = option.get("type", "str")
    if kind == "list" and option.get("elements"):
        kind = f"list of {option['elements']}"
    return kind


def default_of(name: str, option: dict, defaults: dict) -> str:
    if option.get("required"):
        return "**required**"
    if "default" in option:
        return inline(option["default"])
    if templated(defaults.get(name)):
        return "computed (see meaning)"
    return "*none*"


def render(role: Role) -> str:
    """The README section for one role: a table per entry point."""
    out: list[str] = [BEGIN, ""]
    defaults = role.defaults
    for entry, spec in role.specs.items():
        if entry != "main":
            out += [f"Entry point `{entry}` (`tasks_from: {entry}`):", ""]
        options = spec.get("options") or {}
        if not options:
            out += ["This role takes no variables.", ""]
            continue
        out += ["| Variable | Type | Default | Meaning |", "| --- | --- | --- | --- |"]
        for name, option in options.items():
            meaning = markdown(option.get("description", ""))
            if option.get("choices"):
                meaning += " One of " + ", ".join(inline(c) for c in option["choices"]) + "."
            if option.get("no_log"):
                meaning += " Secret (`no_log`)."
            out.append(
                f"| `{name}` | {type_of(option)} | {default_of(name, option, defaults)}"
                f" | {meaning} |"
            )
        out.append("")
    out.append(
        f"Generated from [meta/argument_specs.yml](meta/argument_specs.yml);"
        f" `ansible-doc -t role {role.name}` shows the same."
    )
    out += ["", END]
    return "\n".join(out)


def current_section(text: str) -> str | None:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        return None
    return text[start : end + len(END)]


def write_readme(role: Role) -> bool:
    """Put the generated section in the README; True when the file changed."""
    text = role.readme.read_text()
    section = current_section(text)
    if section is None:
        raise SystemExit(
            f"{role.readme}: add the two marker lines where the variables go:\n{BEGIN}\n{END}"
        )
    new = text.replace(section, render(role))
    if new == text:
        return False
    role.readme.write_text(new)
    return True


# -- drift -----------------------------------------------------------------------------------


def readme_drift(role: Role) -> list[str]:
    section = current_section(role.readme.read_text()) if role.readme.exists() else None
    rel = role.readme.relative_to(role.path.parent.parent)
    if section is None:
        return [f"{rel}: no generated variables section (add the markers, run `make role-docs`)"]
    if section != render(role):
        return [f"{rel}: the variables section differs from the specs: run `make role-docs`"]
    return []


def defaults_drift(role: Role) -> list[str]:
    problems = []
    options, defaults = role.options, role.defaults
    where = f"roles/{role.name}/defaults/main.yml"
    for name, value in defaults.items():
        if name not in options:
            problems.append(f"{where}: {name} has no spec in meta/argument_specs.yml")
            continue
        option = options[name]
        if "default" in option and option["default"] != value:
            problems.append(
                f"{where}: {name} is {value!r} but the spec's default is {option['default']!r}"
            )
        elif "default" not in option and not templated(value):
            problems.append(
                f"{where}: {name} is {value!r}: give the spec the same `default:` "
                "(only computed defaults may go without one)"
            )
        elif (
            "default" not in option
            and "default" not in markdown(option.get("description", "")).lower()
        ):
            problems.append(
                f"roles/{role.name}/meta/argument_specs.yml: {name} has a computed default:"
                ' say what it is in its description ("Defaults to ...")'
            )
    for name, option in options.items():
        if name not in defaults and not option.get("required"):
            problems.append(
                f"{where}: {name} is optional in the spec but has no default here"
                + (f" (spec: {option['default']!r})" if "default" in option else "")
            )
    return problems


def commented_examples(text: str) -> list[tuple[int, str, str]]:
    """(line number, name, YAML of the block) of each commented-out `name: value`."""
    lines = text.splitlines()
    found, i = [], 0
    while i < len(lines):
        match = EXAMPLE_START.match(lines[i])
        if not match:
            i += 1
            continue
        block = [re.sub(r"^#\s?", "", lines[i])]
        j = i + 1
        while j < len(lines) and EXAMPLE_CONTINUATION.match(lines[j]):
            block.append(re.sub(r"^#\s?", "", lines[j]))
            j += 1
        found.append((i + 1, match.group(1), "\n".join(block)))
        i = j
    return found


def validate_value(option_name: str, value, options: dict) -> list[str]:
    from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

    result = ArgumentSpecValidator({option_name: options[option_name]}).validate(
        {option_name: value}
    )
    return [str(e) for e in result.errors]


def inventory_drift(root: Path = ROOT) -> list[str]:
    options = {}
    for role in roles(root):
        options.update(role.options)
    problems = []
    for path in sorted((root / "inventories").glob("*/group_vars/*.yml")):
        rel = path.relative_to(root)
        text = path.read_text()
        examples = [(n, name, block, "example") for n, name, block in commented_examples(text)]
        for name, value in (yaml.safe_load(text) or {}).items():
            examples.append((0, name, {name: value}, "setting"))
        for line, name, block, kind in examples:
            at = f"{rel}:{line}" if line else str(rel)
            if ANSIBLE_VARIABLE.match(name):
                continue
            if name not in options:
                problems.append(f"{at}: {kind} {name} is not a variable of any role's specs")
                continue
            try:
                parsed = yaml.safe_load(block) if isinstance(block, str) else block
            except yaml.YAMLError as exc:
                problems.append(f"{at}: {kind} {name} is not valid YAML once uncommented: {exc}")
                continue
            value = parsed[name]
            if templated(value):
                continue  # e.g. "{{ vault_sentry_dsn }}": its type is known only in a play
            for error in validate_value(name, value, options):
                problems.append(f"{at}: {kind} {name}: {value!r} is refused by the spec: {error}")
    return problems


def drift(root: Path = ROOT) -> list[str]:
    problems = []
    for role in roles(root):
        problems += readme_drift(role) + defaults_drift(role)
    return problems + inventory_drift(root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report drift, change nothing")
    args = parser.parse_args(argv)
    if not args.check:
        for role in roles():
            if write_readme(role):
                print(f"rewrote the variables section of roles/{role.name}/README.md")
    problems = drift()
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
