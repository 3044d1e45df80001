"""Pools: list, get, set, delete."""

from __future__ import annotations

import re

from ..runner import Command
from .common import airflow, as_bool, as_int, flag, name_arg, one_action, read_typed
from .model import Api, ApiError, Arg, ArgType, Values

POOL_NAME_CHARS = 256


def build_pool(v: Values) -> Command:
    if v.get("cmd") == "set" or "pool_name" in v:
        if "set" in v:
            raise ApiError(
                400,
                "Give the pool either as set='NAME SLOTS DESCRIPTION' or as cmd=set&pool_name=..&slot_count=.., "
                "not both",
            )
        if "pool_name" not in v or "slot_count" not in v:
            raise ApiError(400, "cmd=set needs 'pool_name' and 'slot_count'")
        name, slots, description = v["pool_name"], v["slot_count"], v.get("pool_description", "")
        v = {**v, "set": name}
    elif "set" in v:
        parts = v["set"].split(maxsplit=2)
        if len(parts) < 2 or not re.fullmatch(r"[0-9]{1,9}", parts[1]) or len(parts[0]) > POOL_NAME_CHARS:
            raise ApiError(
                400,
                f"'set' takes 'NAME SLOT_COUNT DESCRIPTION' (a name of at most {POOL_NAME_CHARS} characters, "
                "a whole number of slots), for example set=etl 5 nightly jobs",
            )
        name, slots, description = parts[0], int(parts[1]), parts[2] if len(parts) > 2 else ""
    action = one_action("pool", v, ("set", "get", "delete"))
    if action == "set":
        return airflow(
            "pools", "set", *flag("--include-deferred", v.get("include_deferred")), "--", name, str(slots), description
        )
    if action == "get":
        return airflow("pools", "get", "-o", "json", "--", v["get"])
    if action == "delete":
        if v["delete"] == "default_pool":
            raise ApiError(400, "default_pool cannot be deleted")
        return airflow("pools", "delete", "--", v["delete"])
    return airflow("pools", "list", "-o", "json")


APIS: tuple[Api, ...] = (
    Api(
        name="pool",
        summary="CRUD operations on pools",
        runs="airflow pools list|set|get|delete",
        args=(
            Arg("set", ArgType.TEXT, "Set pool slot count and description: 'NAME SLOT_COUNT POOL_DESCRIPTION'"),
            Arg("cmd", ArgType.CHOICE, "cmd=set with pool_name, slot_count, pool_description", choices=("set",)),
            name_arg("pool_name", "Pool name (with cmd=set)", POOL_NAME_CHARS),
            Arg("slot_count", ArgType.INT, "Slot count (with cmd=set)"),
            Arg("pool_description", ArgType.TEXT, "Pool description (with cmd=set)", aliases=("description",)),
            Arg("include_deferred", ArgType.BOOL, "Count deferred tasks against the pool's slots"),
            name_arg("get", "Get pool info", POOL_NAME_CHARS),
            name_arg("delete", "Delete a pool", POOL_NAME_CHARS),
        ),
        build=build_pool,
        parse=read_typed({"slots": as_int, "include_deferred": as_bool}),
        fast_path=True,
        since="1.8.0 or greater",
        notes="With no action it lists pools.",
    ),
)
