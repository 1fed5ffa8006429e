"""Tests for benchmarks/capacity.py: visitors per node and nodes per crowd, computed by hand."""

from __future__ import annotations

from benchmarks.capacity import Node, capacity


def test_visitors_per_node_and_nodes_for_a_crowd_match_a_hand_computation() -> None:
    # 85% of 16 GiB is 13926 MiB: 34 requests of 400 MiB; 85% of 4 cores is 34 requests of 0.1.
    result = capacity(Node(cores=4, gib=16), crowd=100, cpu_s_per_visitor=7.0, memory_request=400 * 2**20,
                      cpu_request=0.1)
    assert (result.per_node, result.bound_by, result.nodes_to_hold) == (34, "memory", 3)
    # 700 CPU-s of starting servers on 3 x 3.4 cores: 68.6 s; within 60 s takes 700 / 204 -> 4 nodes.
    assert round(result.seconds_on_nodes_to_hold, 1) == 68.6
    assert result.nodes_within_a_minute == 4


def test_cpu_requests_bind_when_they_are_the_scarcer_resource() -> None:
    result = capacity(Node(cores=2, gib=64), crowd=10, cpu_s_per_visitor=1.0, memory_request=400 * 2**20,
                      cpu_request=0.5)
    assert (result.per_node, result.bound_by, result.nodes_to_hold, result.nodes_within_a_minute) == (3, "CPU", 4, 4)
