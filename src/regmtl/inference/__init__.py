"""Inference on a fitted linear model: information criteria and the degrees of freedom they
charge (``criteria``), the rows of a fit task by task (``rows``), the covariance of an
unpenalized fit (``covariance``, chosen by ``route``, assembled by ``estimate``), coefficient
tables (``table``), Wald tests (``wald``) and the estimators' methods (``methods``)."""

from .table import coef_table
from .wald import WaldTest, wald_test

__all__ = ["coef_table", "wald_test", "WaldTest"]
