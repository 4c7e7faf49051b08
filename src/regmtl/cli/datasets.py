"""``regmtl datasets``: the table of the data sets regmtl can load (tasks, rows, features,
kind, design) and whether each is shipped, downloaded or missing under the data home.
"""

from __future__ import annotations

import argparse

import numpy as np

from .shared import print_table


def datasets_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data-home", help="folder holding the data sets (default: $REGMTL_DATA, "
                                       "else ./data)")


def run_datasets(args: argparse.Namespace) -> int:
    from ..datasets import get_data_home, list_datasets

    table = list_datasets(args.data_home)
    table["here"] = np.where(table["shipped"], "shipped",
                             np.where(table["available"], "yes", "no"))
    print_table(table, [("name", "name", "{}"), ("tasks", "tasks", "{}"),
                         ("samples", "rows", "{}"), ("features", "features", "{}"),
                         ("kind", "kind", "{}"), ("design", "design", "{}"),
                         ("here", "available", "{}")])
    print(f"\ndata home: {get_data_home(args.data_home)} (set --data-home or REGMTL_DATA); "
          "load one with regmtl.datasets.load_dataset(name)")
    return 0
