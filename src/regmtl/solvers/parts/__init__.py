"""The parts the solvers are made of: inner loops and compiled kernels, Gram and row-space
forms of the data term, Newton models, intercepts, extrapolation. A part imports no solver."""
