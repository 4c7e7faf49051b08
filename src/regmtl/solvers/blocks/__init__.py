"""Solvers whose iterates are held in groups of task blocks on the workers that hold the rows
(Dask): FISTA's and PDHG's groups, their per-block pieces and their certificate."""
