"""Process formation, after Dokku's ps plugin (plugins/ps/functions.go).

The scale is stored as the `ps` property list `scale` (``web=1`` lines) plus `scale.old`
for types no longer in the Procfile; a new app starts with ``web=1``; every release adds
the Procfile's other types at 0; an app.json ``formation`` with quantities replaces the
scale at release and turns `ps:scale` off (`can-scale` false).
"""

from __future__ import annotations

from . import out
from .core import Context


class ScaleError(Exception):
    pass


def parse_tuples(tuples: list[str]) -> list[tuple[str, int]]:
    formations: list[tuple[str, int]] = []
    seen: set[str] = set()
    for item in tuples:
        name, sep, qty = item.partition("=")
        if not sep:
            raise ScaleError(f"Missing count for process type {item}")
        name = name.strip()
        try:
            quantity = int(qty.strip())
        except ValueError:
            raise ScaleError(f"Invalid count for process type {name}") from None
        if name in seen:
            continue
        seen.add(name)
        formations.append((name, quantity))
    return formations


def get_formations(ctx: Context, app: str) -> list[tuple[str, int]]:
    current = parse_tuples(ctx.props.get_list("ps", app, "scale"))
    old = parse_tuples(ctx.props.get_list("ps", app, "scale.old"))
    names = {name for name, _ in current}
    merged = current + [(n, q) for n, q in old if n not in names]
    return sorted(merged)


def procfile_types(ctx: Context, app: str) -> set[str] | None:
    """Process types of the deployed (or last built) Procfile; None without a build."""
    from .build import load_meta

    number = ctx.props.get("standin", app, "build")
    if not number:
        return None
    try:
        return set(load_meta(ctx, app, int(number))["processes"])
    except (OSError, ValueError, KeyError):
        return None


def update_scale(
    ctx: Context,
    app: str,
    updates: list[tuple[str, int]],
    *,
    clear_existing: bool = False,
    valid: set[str] | None = None,
) -> None:
    existing = [] if clear_existing else parse_tuples(ctx.props.get_list("ps", app, "scale"))
    if valid is None:
        valid = procfile_types(ctx, app)
    has_procfile = valid is not None
    valid = valid or set()
    found: set[str] = set()
    formation: list[tuple[str, int]] = []
    for name, qty in updates:
        if has_procfile and name not in valid and qty != 0:
            raise ScaleError(f"{name} is not a valid process name to scale up")
        found.add(name)
        formation.append((name, qty))
    for name, qty in existing:
        if name not in found:
            found.add(name)
            formation.append((name, qty))
    for name in sorted(valid):
        if name not in found:
            formation.append((name, 0))
    values, old = [], []
    for name, qty in formation:
        if name not in valid and qty == 0:
            old.append(f"{name}={qty}")
        else:
            values.append(f"{name}={qty}")
    ctx.props.set_list("ps", app, "scale.old", old)
    ctx.props.set_list("ps", app, "scale", values)


def can_scale(ctx: Context, app: str) -> bool:
    return ctx.props.get("ps", app, "can-scale", "true") == "true"


def scale_report(ctx: Context, app: str, fmt: str) -> None:
    from .core import go_json

    formations = get_formations(ctx, app)
    if fmt == "json":
        out.log(go_json([{"process_type": n, "quantity": q} for n, q in formations]))
        return
    out.info1_quiet(f"Scaling for {app}")
    lines = [] if out.quiet() else [("proctype", "qty"), ("--------", "---")]
    lines += [(name, str(qty)) for name, qty in formations]
    for name, qty in lines:
        out.log(f"{out.right_pad(name + ':', 5)} {qty}")
