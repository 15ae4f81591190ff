"""GPU targets as data: see table.py."""

from .cwsr import QueueSizes, queue_sizes
from .table import TARGETS, Target, get_target, target_for_version, target_name_from_version

__all__ = [
    "TARGETS", "QueueSizes", "Target", "get_target", "queue_sizes", "target_for_version",
    "target_name_from_version",
]
