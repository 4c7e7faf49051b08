"""The solvers on rows in memory (or on the block protocol): each imports only parts
(:mod:`regmtl.solvers.parts`, :mod:`regmtl.solvers.certify`), and the solver table
(:mod:`regmtl.solvers.policy`) runs them."""
