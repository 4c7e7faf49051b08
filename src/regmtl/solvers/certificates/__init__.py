"""Certificates of optimality: the duality gap and the KKT residual of every fit, the dual
points they are read from (projected, polished, of the pinball loss's kinks), the screening
rules they make safe, and the stationarity of ``W = 0`` under the nonconvex penalties."""
