"""``modelharbor hardware-tiers``: the CPU, memory and GPU sizes workloads run with — list, create, update,
archive (admins write; everyone lists)."""

from __future__ import annotations

import typer
from rich.markup import escape

from modelharbor.sdk.cli.common import JsonOpt, command, emit_json, lines, show, size_option, table
from modelharbor.sdk.client import Client
from modelharbor.sdk.wire import HardwareTier

tiers_app = typer.Typer(help="Hardware tiers: list, create, update, archive.", no_args_is_help=True)
TierArg = typer.Argument(..., metavar="TIER", help="The tier's id.")
NameOpt = typer.Option(None, "--name", help="Display name.")
CoresOpt = typer.Option(None, "--cores", help="CPU cores requested (e.g. 0.5); the CPU limit without --cores-limit.")
CoresLimitOpt = typer.Option(None, "--cores-limit", help="CPU cores the workload may use (cgroup CPU quota).")
MemoryOpt = typer.Option(None, "--memory", help="Memory requested, e.g. 4GiB; the limit without --memory-limit.")
MemoryLimitOpt = typer.Option(None, "--memory-limit", help="Memory the workload may use, e.g. 6GiB.")
GpusOpt = typer.Option(None, "--gpus", help="GPUs (the local executor has none: such a tier cannot run there).")
PriceOpt = typer.Option(None, "--cents-per-minute", help="Price shown to users.")
DefaultOpt = typer.Option(None, "--default/--no-default", help="Make it the organisation's default tier.")
VisibleOpt = typer.Option(None, "--visible/--hidden", help="Hidden tiers are listed to admins only.")


def _size(text: str | None, option: str) -> int | None:
    return None if text is None else size_option(text, option)


def _gib(size: int | None) -> str:
    return "-" if size is None else f"{size / 2**30:g} GiB"


def _one(t: HardwareTier, as_json: bool, verb: str) -> None:
    if as_json:
        emit_json(t)
        return
    lines(
        f"{verb} hardware tier {t.id} ({t.name}): {t.cores_limit or t.cores:g} cores, {_gib(t.memory_limit or t.memory)}"
    )


@command(tiers_app, "list")
def tiers_list(
    archived: bool = typer.Option(False, "--archived", help="Include archived tiers."),
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Table of the organisation's tiers, the default first."""
    items = client.hardware_tiers.list(include_archived=archived)
    if as_json:
        emit_json(items)
        return
    t = table("id", "name", "cores", "limit", "memory", "limit", "gpus", "¢/min", "flags")
    for x in items:
        flags = [
            f for f, on in (("default", x.is_default), ("hidden", not x.is_visible), ("archived", x.is_archived)) if on
        ]
        t.add_row(
            escape(x.id),
            escape(x.name),
            f"{x.cores:g}",
            "-" if x.cores_limit is None else f"{x.cores_limit:g}",
            _gib(x.memory),
            _gib(x.memory_limit),
            str(x.gpus),
            f"{x.cents_per_minute:g}",
            ", ".join(flags),
        )
    show(t)
    lines(f"{len(items)} tier(s)")


@command(tiers_app, "create")
def tiers_create(
    tier: str = TierArg,
    name: str = typer.Option(..., "--name", help="Display name."),
    cores: float = typer.Option(..., "--cores", help="CPU cores requested (e.g. 0.5)."),
    memory: str = typer.Option(..., "--memory", help="Memory requested, e.g. 4GiB."),
    cores_limit: float = CoresLimitOpt,
    memory_limit: str = MemoryLimitOpt,
    gpus: int = GpusOpt,
    cents_per_minute: float = PriceOpt,
    default: bool = DefaultOpt,
    visible: bool = VisibleOpt,
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Create a tier (admins)."""
    t = client.hardware_tiers.create(
        tier,
        name,
        cores=cores,
        memory=size_option(memory, "--memory"),
        cores_limit=cores_limit,
        memory_limit=_size(memory_limit, "--memory-limit"),
        gpus=gpus,
        cents_per_minute=cents_per_minute,
        is_default=default,
        is_visible=visible,
    )
    _one(t, as_json, "created")


@command(tiers_app, "update")
def tiers_update(
    tier: str = TierArg,
    name: str = NameOpt,
    cores: float = CoresOpt,
    memory: str = MemoryOpt,
    cores_limit: float = CoresLimitOpt,
    memory_limit: str = MemoryLimitOpt,
    gpus: int = GpusOpt,
    cents_per_minute: float = PriceOpt,
    default: bool = DefaultOpt,
    visible: bool = VisibleOpt,
    as_json: bool = JsonOpt,
    client: Client = None,
):
    """Change the given fields of a tier (admins)."""
    t = client.hardware_tiers.update(
        tier,
        name=name,
        cores=cores,
        memory=_size(memory, "--memory"),
        cores_limit=cores_limit,
        memory_limit=_size(memory_limit, "--memory-limit"),
        gpus=gpus,
        cents_per_minute=cents_per_minute,
        is_default=default,
        is_visible=visible,
    )
    _one(t, as_json, "updated")


@command(tiers_app, "archive")
def tiers_archive(tier: str = TierArg, as_json: bool = JsonOpt, client: Client = None):
    """Archive a tier (admins; not the default)."""
    _one(client.hardware_tiers.archive(tier), as_json, "archived")


def register(app: typer.Typer) -> None:
    app.add_typer(tiers_app, name="hardware-tiers")
