"""Capacity of a JupyterHub deployment, computed from what ``benchmarks.load --hub`` measured.

    python -m benchmarks.load --hub --visitors 1,5,10 --output benchmarks/results/load-hub.json
    python -m benchmarks.capacity                       # reads that file
    python -m benchmarks.capacity --crowd 200 --node 8,32

Kubernetes places a visitor's pod by its requests (``singleuser.memory.guarantee``
and ``cpu.guarantee`` in ``deploy/values.yaml``), so visitors per node follow
from those and the node's allocatable share.  A crowd arriving at once is
bound by CPU: every visitor's server and kernel start costs the CPU-seconds
measured per visitor, so ``crowd x CPU-s / (nodes x cores)`` is the least time
until the last one is served, whatever the scheduler does.  The table gives
the nodes needed to hold the crowd, and to serve it all within a minute.
"""

from __future__ import annotations

import argparse
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import yaml
from jupyterhub.traitlets import ByteSpecification

from classifier.testing import ROOT

DEFAULT_INPUT: Final[Path] = ROOT / "benchmarks" / "results" / "load-hub.json"
ALLOCATABLE: Final[float] = 0.85
"""Share of a node's cores and memory left for pods after the kubelet, system pods and the placeholders' slack."""
SERVED_WITHIN_S: Final[float] = 60
MB: Final[int] = 2**20


@dataclass(frozen=True)
class Node:
    """A node shape: cores and memory in GiB."""

    cores: int
    gib: int


@dataclass(frozen=True)
class Capacity:
    node: Node
    per_node: int
    bound_by: str
    nodes_to_hold: int
    nodes_within_a_minute: int
    seconds_on_nodes_to_hold: float


def capacity(node: Node, crowd: int, cpu_s_per_visitor: float, memory_request: int, cpu_request: float) -> Capacity:
    """Visitors per node, and nodes for ``crowd`` visitors arriving at once."""
    by_memory = math.floor(ALLOCATABLE * node.gib * 2**30 / memory_request + 1e-9)  # 1e-9: 3.4 / 0.1 is 34
    by_cpu = math.floor(ALLOCATABLE * node.cores / cpu_request + 1e-9)
    per_node = min(by_memory, by_cpu)
    to_hold = math.ceil(crowd / per_node)
    work = crowd * cpu_s_per_visitor
    return Capacity(
        node=node, per_node=per_node, bound_by="memory" if by_memory <= by_cpu else "CPU",
        nodes_to_hold=to_hold,
        nodes_within_a_minute=max(to_hold, math.ceil(work / (SERVED_WITHIN_S * ALLOCATABLE * node.cores))),
        seconds_on_nodes_to_hold=work / (to_hold * ALLOCATABLE * node.cores),
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input", type=Path, default=DEFAULT_INPUT, help=f"load --hub results (default {DEFAULT_INPUT})")
    parser.add_argument("--crowd", type=int, default=100, help="visitors arriving at once (default 100)")
    parser.add_argument("--node", action="append", default=[], help="cores,GiB of a node shape (default 4,16 and 8,32)")
    arguments = parser.parse_args(argv)
    measured = json.loads(arguments.input.read_text())["crowds"]
    largest = max(measured, key=lambda crowd: crowd["visitors"])
    cpu_s = max(crowd["cpu_s_per_visitor"] for crowd in measured)
    pss = max(crowd["pss_mb_per_visitor"] for crowd in measured)
    single_user = yaml.safe_load((ROOT / "deploy" / "values.yaml").read_text())["singleuser"]
    memory_request = ByteSpecification().validate(None, single_user["memory"]["guarantee"])
    cpu_request = float(single_user["cpu"]["guarantee"])
    nodes = [Node(*map(int, shape.split(","))) for shape in arguments.node] or [Node(4, 16), Node(8, 32)]

    print(f"Measured through the hub (largest crowd {largest['visitors']}): {cpu_s:.1f} CPU-s and "
          f"{pss:.0f} MB PSS per visitor (most of any crowd); requests in deploy/values.yaml: "
          f"{memory_request / MB:.0f} MiB and {cpu_request} CPU.")
    if pss * MB > memory_request:
        print(f"WARNING: visitors hold more than their memory request ({pss:.0f} MB > {memory_request / MB:.0f} MiB)")
    header = ["node", "visitors per node", "bound by", f"nodes for {arguments.crowd}",
              f"all {arguments.crowd} served on those, at least", "nodes to serve all within a minute"]
    rows = [header]
    for result in (capacity(node, arguments.crowd, cpu_s, memory_request, cpu_request) for node in nodes):
        rows.append([
            f"{result.node.cores} cores, {result.node.gib} GiB", str(result.per_node), result.bound_by,
            str(result.nodes_to_hold), f"{result.seconds_on_nodes_to_hold:.0f} s", str(result.nodes_within_a_minute),
        ])
    widths = [max(len(row[column]) for row in rows) for column in range(len(header))]
    for index, row in enumerate(rows):
        print("  ".join(cell.rjust(width) for cell, width in zip(row, widths)))
        if index == 0:
            print("-" * (sum(widths) + 2 * (len(widths) - 1)))


if __name__ == "__main__":
    main()
