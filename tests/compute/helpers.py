"""Helpers for the compute tests."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from modelharbor.compute.base import Environment

SERVER_ENV = Environment(key="server", python=Path(sys.executable), base="python3-11")


def wait_until(condition: Callable[[], object], timeout: float = 10.0, what: str = "condition") -> object:
    end = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def live_children() -> list[psutil.Process]:
    alive = []
    for child in psutil.Process().children(recursive=True):
        try:
            if child.status() != psutil.STATUS_ZOMBIE:
                alive.append(child)
        except psutil.NoSuchProcess:
            pass
    return alive


ECHO = """
import os, sys, time

class Deployment:
    def __init__(self, base_directory, context):
        self.base_directory = base_directory
        self.context = context
        print("initialised with", sorted(context))

    def request(self, data):
        if isinstance(data, dict):
            if data.get("fail"):
                raise ValueError("bad input: " + str(data["fail"]))
            if data.get("exit"):  # the process dies in the middle of a request
                os._exit(3)
            if "append" in data:  # a side effect that shows how often a request ran
                with open(data["append"], "a") as f:
                    f.write(str(os.getpid()) + " ")
            if "sleep" in data:
                time.sleep(data["sleep"])
            if "env" in data:
                return {name: os.environ.get(name) for name in data["env"]}
            if "print" in data:
                print(data["print"])
                print("to stderr:", data["print"], file=sys.stderr)
        return {"echo": data, "pid": os.getpid(), "cwd": os.getcwd(), "base": self.base_directory,
                "context": self.context}
"""


def pid_alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
