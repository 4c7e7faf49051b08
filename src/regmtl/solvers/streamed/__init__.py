"""The out-of-core fit of a task source read chunk by chunk: the statistics pass and its Gram
form on disk (``quadratic``), FISTA on it (``fista``), the squared loss's fit (``fit``), proximal
Newton for the logistic loss (``newton``) and the state kept in a folder to resume
(``checkpoint``)."""
