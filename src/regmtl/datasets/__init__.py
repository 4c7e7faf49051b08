"""Data sets shipped with regmtl and helpers to split them."""

from ._school import SCHOOL_FEATURE_NAMES, load_school
from ._split import train_test_split_per_task

__all__ = ["load_school", "train_test_split_per_task", "SCHOOL_FEATURE_NAMES"]
