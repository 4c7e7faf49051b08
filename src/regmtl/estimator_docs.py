"""The parameters and attributes the linear estimators share, as their docstrings give
them (kept apart so that ``estimators`` holds code)."""

__all__ = ["PARAMS_DOC", "ATTRIBUTES_DOC", "TERMS_DOC"]

TERMS_DOC = """
    penalty_factor : array-like of shape (p,) or (p, T), or dict, optional
        A factor :math:`d_j \\ge 0` per feature (or per feature and task, for the penalties
        separable over tasks), or a dict from feature name or position to factor (others 1):
        the fit penalizes :math:`\\Omega(D W)`, ``d_j |w_jt|`` and ``d_j ||W_j||`` for the
        norms of entries and rows (glmnet's ``penalty.factor``); 0 leaves the feature
        unpenalized (exactly, never by a small factor; per task, in some tasks only),
        ``inf`` excludes it. Each penalty's ``factor_entry`` says how a factor enters it
        (``regmtl.feature_terms``).
    exclude : array-like, optional
        Features (positions, names, or a mask) left out: their coefficients are 0.
    lower_bounds, upper_bounds : float, array-like of shape (p,) or (p, T), or dict, optional
        A box :math:`\\ell \\le W \\le u` (``-inf`` / ``inf``: none), in the prox of the
        penalties whose block step is by entries or rows (``l1``, ``l2``, ``elasticnet``,
        ``l21``) and on unpenalized features with any penalty; refused by name elsewhere.
        ``positive=True`` of a penalty is the box ``[0, inf)``.
    rescale_factors : bool, default=True
        Rescale the factors as glmnet does (``alpha`` then keeps its scale): an excluded
        feature counts as a factor of 1 and the factors sum to the number of features;
        False takes them as given.
    standardize : bool or "task", default=False
        Penalize each feature in units of its standard deviation over the objective's rows
        (weighted by the row weights): the factor ``d_j s_j``. Coefficients are reported in
        the input's units, as glmnet's. ``"task"``: each task's columns in units of that
        task's own deviation ``s_jt`` (its rows alone; for tasks whose features sit at
        different levels, where the pooled deviation also measures the gaps between the
        tasks): the penalty acts on ``v_jt = d_j s_jt w_jt``, with every penalty. A feature
        constant within a task keeps the unit 1 there, its constant in the task's intercept
        (coefficient 0 under the penalties of entries and rows). One design with a target
        matrix takes it where no task misses a label the others have (then it is ``True``).
    factor_convention : {"unit", "glmnet"}, default="unit"
        How a factor enters a ridge part (``l2``, ``elasticnet``, ``l21`` with
        ``l1_ratio < 1``): ``"unit"``, a change of the feature's unit, the ridge of
        ``d_j w_j``, :math:`\\frac{1 - \\rho}{2} \\sum_j d_j^2 \\|W_j\\|^2`; ``"glmnet"``,
        glmnet's ``penalty.factor`` (glum's ``P1 = P2 = d``),
        :math:`\\frac{1 - \\rho}{2} \\sum_j d_j \\|W_j\\|^2` (with ``standardize``, glmnet's
        ``d_j`` on the standardized coefficient: ``d_j s_j^2 w_j^2``, and under ``"task"``
        ``d_j s_jt^2 w_jt^2``, each task's). The same fit for a penalty without a ridge
        part; refused by a squared term in the feature metric (``mean``, ``graph``,
        ``clustered``) unless every factor is 1.
"""

PARAMS_DOC = """
    Parameters
    ----------
    penalty : str or Penalty, default="l21"
        The shape of :math:`\\Omega`: ``"l21"``, ``"l1"``, ``"l2"``, ``"elasticnet"``,
        ``"trace"``, ``"mean"``, ``"clustered"``, ``"dirty"``, ``"sparse_lowrank"``,
        ``"robust_lowrank"``, ``"robust_features"``, ``"temporal_group_lasso"``,
        ``"fused_group_lasso"`` (that penalty with its default parameters) or a penalty
        object such as
        ``regmtl.L21(l1_ratio=0.9)`` or ``regmtl.GraphLaplacian(A)`` (the penalty classes
        give the formulas and when to pick which).
    alpha : float or array-like of shape (T,), default=0.1
        Overall strength of the penalty, >= 0; or one strength per task (in the order of
        ``tasks_``) for the penalties separable over tasks (``"l1"``, ``"l2"``,
        ``"elasticnet"``), as scikit-learn's ``Ridge(alpha=array)``: T independent problems,
        certified together (see ``regmtl.task_alpha``).
    fit_intercept : bool, default=True
        Fit one unpenalized intercept per task.
    task_weight : {"equal", "samples"} or array-like of shape (T,), default="equal"
        The task weights :math:`\\omega_t`: 1 (every task counts the same), ``T n_t / N``
        (every sample counts the same), or given positive weights.
    solver : {"auto", "bcd", "fista", "cg", "admm"}, default="auto"
        ``"auto"`` picks block coordinate descent (``"bcd"``, proximal Newton for the
        logistic loss) for the row-separable penalties (``l1``, ``l2``, ``elasticnet``,
        ``l21``), conjugate gradients on the optimality system (``"cg"``) for the squared
        loss with ``"mean"`` or ``GraphLaplacian``, ADMM with exact per-task solves
        (``"admm"``) for the squared loss with ``"trace"`` or ``"clustered"``, and
        accelerated proximal gradient (``"fista"``) otherwise.
    tol : float, default=1e-4
        Stop when the duality gap is below ``tol`` times the objective at W = 0 (intercepts
        fitted), or the relative KKT residual below ``tol``.
    max_iter : int, default=1000
        Epochs (coordinate descent), proximal Newton steps or iterations (FISTA, conjugate
        gradients; blocks of 64 primal-dual iterations for the quantile loss); a fit that runs
        out warns (``ConvergenceWarning``) with the certificate
        it reached.
    warm_start : bool, default=False
        Start from the previous solution when the problem's shape is unchanged.
    verbose : int, default=0
        Print the solver's progress (the certificate at every check) when > 0.
    solver_options : dict, optional
        Block coordinate descent only: ``working_set`` (default True), ``screening`` (True,
        gap-safe rules), ``anderson`` (5 iterates per extrapolation, 0 for none), ``gram``
        (``"auto"``: the Gram form on a shared design whose tasks have no sample weights or
        missing labels; True or False), ``p0`` (10, the smallest working set). They change
        the path to the optimum, not the optimum.
""" + TERMS_DOC + """"""

ATTRIBUTES_DOC = """
    Attributes
    ----------
    coef_ : ndarray of shape (T, p), or (p,) for a single task
        Row t holds task t's weights :math:`w_t` (scikit-learn's layout; ``coef_matrix_`` is
        its transpose, the W of the objective).
    intercept_ : ndarray of shape (T,), or float for a single task
        The intercepts :math:`b_t` (zeros with ``fit_intercept=False``).
    tasks_ : ndarray of shape (T,)
        Task labels: list positions, dict keys, the sorted task ids of the long form, or the
        columns of a shared Y (DataFrame column names).
    n_tasks_ : int
        Number of tasks T.
    input_form_ : str
        The input form of ``fit``: ``"single"``, ``"list"``, ``"dict"``, ``"long"`` or
        ``"shared"`` (``predict`` answers in the form it is given).
    n_features_in_ : int
        Number of features p.
    loss_ : Datafit
        The loss fitted, its parameters read from the data in place (``Huber()``: its
        ``delta`` in the targets' units).
    feature_names_in_ : ndarray of shape (p,)
        Feature names, when ``X`` was a DataFrame with string column names.
    n_iter_ : int
        Epochs or iterations the solver ran.
    dual_gap_ : float
        Absolute duality gap of the returned solution, where the penalty has a tractable
        dual (``l1``, ``l2``, ``elasticnet``, ``l21``, ``trace``, ``dirty``,
        ``sparse_lowrank``, ``robust_lowrank``, ``robust_features``,
        ``temporal_group_lasso``, ``fused_group_lasso``, ``MeanRegularized(ridge > 0)``)
        and ``alpha > 0``.
    kkt_residual_ : float
        Otherwise (``mean`` without ridge, ``GraphLaplacian``, ``clustered``, ``alpha = 0``):
        the KKT residual relative to the gradient at W = 0. Only one of the two is set. For
        the nonconvex ``mcp``, ``scad``, ``capped_l1`` it is the residual of the Clarke
        subdifferential: it certifies a stationary point, not a global minimum.
    objective_ : float
        The objective at the solution.
    objective_at_zero_ : float
        The objective at W = 0 with fitted intercepts (of the problem the solver certified:
        an offset's folded constant, which ``objective_`` adds, aside): the scale of ``tol``.
    certificate_relative_ : float
        The certificate the fit compared with ``tol``: ``dual_gap_ / objective_at_zero_``
        (less the share float64 rounding accounts for, where the solver counted one), or
        ``kkt_residual_``, already relative. A model loaded from a file saved before these
        two were kept lacks them.
    task_sizes_ : ndarray of shape (T,)
        ``n_t / omega_t``: what divides each task's loss sum in the objective (the weighted
        count of observed rows under equal task weights); :func:`~regmtl.transfer` scales a
        new task's prior with it.
    P_, Q_ : ndarray of shape (T, p)
        ``dirty``, ``sparse_lowrank``, ``robust_lowrank`` and ``robust_features`` only: the
        two parts, ``coef_ = P_ + Q_`` (``Dirty``: P shared rows, Q exceptions;
        ``SparseLowRank``: P sparse, Q low-rank; ``RobustLowRank`` / ``RobustFeatures``: P the
        shared low-rank / row-sparse part, Q the outlier tasks).
    outlier_tasks_ : ndarray of int
        ``robust_lowrank`` and ``robust_features`` only: the positions (in ``tasks_``) of the
        outlier tasks, those whose row of ``Q_`` is nonzero.
    singular_values_ : ndarray of shape (min(p, T),)
        ``trace`` only: the singular values of W.
    rank_ : int
        ``trace`` only: the number of singular values above ``1e-8`` times the largest.
    cluster_vectors_ : ndarray of shape (T, min(p, T))
        ``clustered`` only: V, the right singular vectors of W, eigenvectors of the optimal M
        of the penalty, which is kept by its factors (O(T p) memory):
        ``M = V diag(m) V^T + m0 (I - V V^T)``.
    cluster_weights_ : ndarray of shape (min(p, T),)
        ``clustered`` only: m, the eigenvalues of M on ``cluster_vectors_``.
    cluster_rest_ : float
        ``clustered`` only: m0, the eigenvalue of M on the complement of ``cluster_vectors_``.
    cluster_matrix_ : ndarray of shape (T, T)
        ``clustered`` only: the dense M, formed from the factors on each access, for at most
        5000 tasks (``regmtl.penalties.spectral.MAX_DENSE_CLUSTER_MATRIX``; beyond, an
        ``AttributeError`` names the factors).
    task_clusters_ : ndarray of shape (T,)
        ``clustered`` only: a cluster label per task (k-means on the leading eigenvectors of
        M).
"""
