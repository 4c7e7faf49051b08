"""Data sets: School and Solar Flare shipped with regmtl, loaders for benchmark sets read from a
data folder, a reader for a user's own table, and helpers to split them."""

from ._deep_synthetic import make_mmoe_tasks, make_recommender_tasks
from ._digits import load_mnist, load_usps
from ._home import get_data_home
from ._landmine import load_landmine
from ._mulan import MULAN_SETS, load_mulan
from ._multi_digits import make_two_digit_tasks
from ._multimodal import make_multimodal_tasks
from ._parkinsons import load_parkinsons
from ._parquet_tasks import make_parquet_tasks, parquet_tasks_truth
from ._registry import DATASET_NAMES, list_datasets, load_dataset
from ._sarcos import load_sarcos
from ._school import SCHOOL_FEATURE_NAMES, load_school
from ._solar_flare import SOLAR_FLARE_ATTRIBUTES, load_solar_flare
from ._split import apply_split, train_test_split_per_task
from ._survey import load_computer_survey
from ._synthetic import make_multitask_classification, make_multitask_regression
from ._table import DataFileError, read_table
from ._text import NEWSGROUP_PAIRS, load_newsgroups, load_spam

__all__ = [
    "load_school",
    "load_solar_flare",
    "load_computer_survey",
    "load_landmine",
    "load_parkinsons",
    "load_sarcos",
    "load_usps",
    "load_mnist",
    "load_spam",
    "load_newsgroups",
    "load_mulan",
    "list_datasets",
    "load_dataset",
    "DATASET_NAMES",
    "read_table",
    "DataFileError",
    "get_data_home",
    "train_test_split_per_task",
    "apply_split",
    "SCHOOL_FEATURE_NAMES",
    "SOLAR_FLARE_ATTRIBUTES",
    "MULAN_SETS",
    "NEWSGROUP_PAIRS",
    "make_multitask_regression",
    "make_multitask_classification",
    "make_mmoe_tasks",
    "make_recommender_tasks",
    "make_two_digit_tasks",
    "make_multimodal_tasks",
    "make_parquet_tasks",
    "parquet_tasks_truth",
]
