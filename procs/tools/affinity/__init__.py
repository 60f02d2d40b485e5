"""CPU affinity tuning: read the topology, propose a layout and say why, apply it by pid.

``topology`` (cores, SMT siblings, NUMA nodes, isolcpus/nohz_full, permissions), ``layout``
(``propose`` and its rules), ``apply`` (pins running processes, reports refusals), ``write``
(the ``cpu``/``idle`` TOML fragment), ``measure`` (``b25 bench e2e`` before/after) and ``cli``
(``scripts/tune_affinity.py``).
"""

from .apply import Outcome, apply_layout, apply_placement, supervisor_pids
from .layout import HOT_PATH, PROCESSES, Placement, Proposal, propose, validate
from .topology import Permissions, Topology, format_cpulist, parse_cpulist, read_permissions, read_topology
from .write import to_toml

__all__ = ["HOT_PATH", "PROCESSES", "Outcome", "Permissions", "Placement", "Proposal", "Topology",
           "apply_layout", "apply_placement", "format_cpulist", "parse_cpulist", "propose", "read_permissions",
           "read_topology", "supervisor_pids", "to_toml", "validate"]
