"""Synthetic multi-task problems for deep multi-task models (shared rows, one target per task).

:func:`make_mmoe_tasks` gives the regression tasks of controlled relatedness of the MMoE paper;
:func:`make_recommender_tasks` a recommender log with click, purchase and rating labels, the
later ones missing by design (observed only after the earlier event). Both draw everything from
one :class:`numpy.random.Generator`, so the same ``random_state`` gives the same data.
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from ._checks import (
    RandomState,
    as_rng,
    check_int,
    check_open_unit,
    check_positive,
    check_real,
)

__all__ = ["make_mmoe_tasks", "make_recommender_tasks"]

RECOMMENDER_TARGETS: tuple[str, ...] = ("click", "purchase", "rating")


# --------------------------------------------------------------------- MMoE tasks
def make_mmoe_tasks(
    n_samples: int = 10000,
    n_features: int = 100,
    correlation: float = 1.0,
    *,
    n_tasks: int = 2,
    scale: float = 1.0,
    n_sin: int = 10,
    noise: float = 0.1,
    random_state: RandomState = None,
) -> Bunch:
    r"""Regression tasks whose relatedness is set by one number (Ma et al., KDD 2018, §4.2).

    The synthetic data of "Modeling Task Relationships in Multi-task Learning with Multi-gate
    Mixture-of-Experts". Orthonormal :math:`u_1, \dots, u_T \in \mathbb{R}^d` (Gram-Schmidt,
    i.e. the sign-fixed QR, of a Gaussian d x T matrix) give the weights

    .. math::

        w_1 = c\, u_1, \qquad w_t = c\,\bigl(p\, u_1 + \sqrt{1 - p^2}\; u_t\bigr)
        \quad (t \ge 2),

    :math:`p` = ``correlation``, :math:`c` = ``scale``; so :math:`\|w_t\| = c`, the cosine of
    :math:`w_1` and :math:`w_t` is exactly :math:`p`, and that of :math:`w_s, w_t`
    (:math:`s, t \ge 2`, :math:`s \ne t`) is :math:`p^2`. Rows :math:`x \sim N(0, I_d)` and

    .. math::

        y_t = w_t^\top x + \sum_{k=1}^{m} \sin(a_k\, w_t^\top x + b_k) + \varepsilon_t,
        \qquad \varepsilon_t \sim N(0, \sigma^2),

    :math:`m` = ``n_sin``, :math:`\sigma` = ``noise``. The paper takes :math:`a_k, b_k` as
    given parameters; here they are drawn iid :math:`N(0, 1)` once per call and shared by all
    tasks (returned as ``sin_params``). The correlation of the labels decreases with :math:`p`
    but is not equal to it (the sines make the tasks nonlinear).

    Parameters
    ----------
    n_samples : int >= 1, default=10000
        Number of rows n (every task has a target on every row).
    n_features : int >= n_tasks, default=100
        Dimension d of x.
    correlation : float in [-1, 1], default=1.0
        :math:`p`, the cosine similarity of :math:`w_1` and every other :math:`w_t`.
    n_tasks : int >= 1, default=2
        Number of tasks T.
    scale : float > 0, default=1.0
        :math:`c`, the norm of every :math:`w_t`.
    n_sin : int >= 0, default=10
        Number m of sine terms (0 gives linear tasks).
    noise : float >= 0, default=0.1
        Standard deviation :math:`\sigma` of the label noise (the paper's variance 0.01).
    random_state : int, numpy Generator, RandomState or None
        Seeds :func:`numpy.random.default_rng` (a RandomState supplies the seed).

    Returns
    -------
    Bunch
        ``X`` (n x d float64), ``Y`` (n x T float64), ``W`` (d x T, column t = :math:`w_t`),
        ``basis`` (d x T, column t = :math:`u_t`), ``sin_params`` (m x 2, rows
        :math:`(a_k, b_k)`), ``label_correlation`` (T x T Pearson correlation of the columns
        of ``Y``), ``target_names`` (``task_0`` ...), ``feature_names`` (``x_0`` ...),
        ``correlation``, ``scale``, ``kind`` ("regression"), ``source`` ("synthetic"),
        ``DESCR``.

    Examples
    --------
    >>> from regmtl.datasets import make_mmoe_tasks
    >>> data = make_mmoe_tasks(500, 20, 0.5, random_state=0)
    >>> data.X.shape, data.Y.shape, data.W.shape
    ((500, 20), (500, 2), (20, 2))
    """
    check_int("n_tasks", n_tasks, 1)
    check_int("n_features", n_features, n_tasks, None,
              "at least n_tasks, for n_tasks orthonormal directions")
    check_int("n_samples", n_samples, 1)
    check_int("n_sin", n_sin, 0)
    check_real("correlation", correlation, -1.0, 1.0)
    check_positive("scale", scale)
    check_real("noise", noise, 0.0)
    n, d, T, m = int(n_samples), int(n_features), int(n_tasks), int(n_sin)
    p, c = float(correlation), float(scale)
    rng = as_rng(random_state)

    Q, R = np.linalg.qr(rng.standard_normal((d, T)))
    U = Q * np.where(np.diag(R) < 0, -1.0, 1.0)          # Gram-Schmidt: diag(R) > 0
    W = np.empty((d, T))
    W[:, 0] = U[:, 0]
    W[:, 1:] = p * U[:, :1] + np.sqrt(max(0.0, 1.0 - p * p)) * U[:, 1:]
    W *= c
    ab = rng.standard_normal((m, 2))
    X = rng.standard_normal((n, d))
    S = X @ W
    Y = S.copy()
    for a, b in ab:
        Y += np.sin(a * S + b)
    Y += noise * rng.standard_normal((n, T))

    title = "Synthetic MMoE tasks"
    descr = (
        f"{title}\n{'-' * len(title)}\n\n"
        "The synthetic regression tasks of Ma et al., \"Modeling Task Relationships in "
        "Multi-task\nLearning with Multi-gate Mixture-of-Experts\", KDD 2018, section 4.2.\n"
        f"{T} tasks sharing {n} rows of {d} features, x ~ N(0, I).\n"
        "w_1 = c u_1, w_t = c (p u_1 + sqrt(1 - p^2) u_t) for t >= 2, u_t orthonormal;\n"
        "y_t = w_t.x + sum_{k=1..m} sin(a_k w_t.x + b_k) + N(0, sigma^2) noise,\n"
        "a_k, b_k ~ N(0, 1) drawn once and shared by all tasks.\n"
        f"p = correlation = {p:g}, c = scale = {c:g}, m = n_sin = {m}, sigma = noise = "
        f"{noise:g}.\n"
        "cos(w_1, w_t) = p exactly; the label correlation decreases with p.\n"
        "The exact model: help(regmtl.datasets.make_mmoe_tasks).\n"
    )
    return Bunch(
        X=X, Y=Y, W=W, basis=U, sin_params=ab, label_correlation=_pearson(Y),
        target_names=[f"task_{t}" for t in range(T)],
        feature_names=[f"x_{j}" for j in range(d)],
        correlation=p, scale=c, kind="regression", source="synthetic", DESCR=descr,
    )


# --------------------------------------------------------------------- recommender tasks
def make_recommender_tasks(
    n_samples: int = 20000,
    n_users: int = 500,
    n_items: int = 300,
    n_features: int = 16,
    *,
    click_rate: float = 0.3,
    purchase_rate: float = 0.3,
    n_categories: int | None = None,
    random_state: RandomState = None,
) -> Bunch:
    r"""A recommender log with click, purchase and rating labels; later labels missing by design.

    Each row is one impression of an item to a user, with three tasks that share structure
    (the ESMM / MMoE setting): a click, a purchase observed only after a click, and a rating
    observed only after a purchase.

    **Latent model.** With :math:`k` = ``n_features // 2``: user :math:`i` has factors
    :math:`u_i \sim N(0, I_k)` and activity :math:`\beta_i \sim N(0, 1)`; item :math:`j` has
    factors :math:`v_j \sim N(0, I_k)`, popularity :math:`\pi_j`, quality :math:`q_j` (both
    :math:`N(0, 1)`) and log price :math:`\rho_j = 0.5\, q_j + \sqrt{0.75}\, z_j` (better
    items cost more). A row's user is uniform over users, its item drawn with probability
    :math:`\propto e^{0.5 \pi_j}` (popular items are shown more). With the user-item fit
    :math:`a = u_i^\top v_j / \sqrt{k}` (unit variance) and iid :math:`N(0, 1)` noises
    :math:`\varepsilon`:

    .. math::

        f_c &= \alpha_c + a + 0.7\, \pi_j + 0.5\, \beta_i + 0.5\, \varepsilon_c,
        &\quad \text{click} &\sim \mathrm{Bernoulli}(\sigma(f_c)), \\
        f_p &= \alpha_p + 0.8\, a + 0.8\, q_j - 0.8\, \rho_j + 0.5\, \varepsilon_p,
        &\quad \text{purchase} &\sim \mathrm{Bernoulli}(\sigma(f_p))
        \text{ if click, else NaN}, \\
        f_r &= 0.8 + q_j + 0.6\, a + 0.5\, \varepsilon_r,
        &\quad \text{rating} &= 1 + 4\, \sigma(f_r) \text{ if purchase, else NaN}.

    :math:`\sigma` is the logistic function. The intercept :math:`\alpha_c` is solved so that
    the mean of :math:`\sigma(f_c)` over the rows is ``click_rate``, and :math:`\alpha_p` so
    that its mean over the clicked rows is ``purchase_rate``; so the realized rates match them
    up to binomial noise. The rating is a float in (1, 5).

    **Item categories.** Each item belongs to one of :math:`G` = ``n_categories`` categories,
    groups of items alike in factors and quality: :math:`G` distinct seed items
    :math:`s_1, \dots, s_G` are drawn uniformly, and item :math:`j` joins the category of the
    seed nearest to it in :math:`w_j = (v_j, q_j) \in \mathbb{R}^{k + 1}`,

    .. math::

        g_j = \operatorname{argmin}_{g} \lVert w_j - w_{s_g} \rVert,

    so no category is empty (seed :math:`s_g` is in category :math:`g`). The category enters
    no label; it is informative because it carries part of the item's factors and quality (at
    the default sizes, 300 items in 20 categories, the category means of :math:`w_j` explain
    about 40% of its variance), learned from all the rows of the category's items. The seeds
    are drawn after everything else, so the other outputs do not depend on ``n_categories``.

    **Features.** ``X`` has :math:`3k + 4` columns: the user's observed factors
    :math:`\tilde u_i = u_i + 0.5\, z` (``user_0`` ...), the item's :math:`\tilde v_j = v_j +
    0.5\, z` (``item_0`` ...), their elementwise product :math:`\tilde u_i \odot \tilde v_j`
    (``user_x_item_0`` ...; a linear model can use the fit through it), then ``item_log_price``
    (:math:`\rho_j`, exact), ``item_quality_score`` (:math:`q_j + 0.5 z`),
    ``item_popularity_score`` (:math:`\pi_j + 0.5 z`) and ``user_activity_score``
    (:math:`\beta_i + 0.5 z`), every :math:`z` iid :math:`N(0, 1)` and fixed per user or item.

    Parameters
    ----------
    n_samples : int >= 1, default=20000
        Number of impressions (rows).
    n_users, n_items : int >= 1, default=500, 300
        Number of users and of items.
    n_features : even int >= 2, default=16
        Number of observed user plus item factor features; :math:`k` = ``n_features // 2``
        latent factors per side.
    click_rate : float in (0, 1), default=0.3
        Expected fraction of rows clicked.
    purchase_rate : float in (0, 1), default=0.3
        Expected fraction of clicked rows purchased.
    n_categories : int in [1, n_items], optional
        Number :math:`G` of item categories; default ``min(20, n_items)``.
    random_state : int, numpy Generator, RandomState or None
        Seeds :func:`numpy.random.default_rng` (a RandomState supplies the seed).

    Returns
    -------
    Bunch
        ``X`` (n x (3k + 4) float64), ``Y`` (n x 3 float64; columns click, purchase, rating,
        NaN where not observed), ``kinds`` (``{"click": "binary", "purchase": "binary",
        "rating": "regression"}``), ``user`` and ``item`` (n int64 indices), ``category``
        (n int64, the category :math:`g_j` of the row's item, in 0..G-1), ``item_category``
        (n_items int64, :math:`g_j` of every item), ``n_categories`` (G),
        ``feature_names``, ``target_names``, ``user_factors`` (n_users x k),
        ``item_factors`` (n_items x k), ``intercept`` (``{"click": alpha_c, "purchase": alpha_p}``),
        ``click_probability`` (n, :math:`\sigma(f_c)`), ``conversion_probability`` (n,
        :math:`\sigma(f_p)`, the true post-click conversion rate on every row, clicked or
        not), ``purchase_if_clicked`` (n float 0/1, no NaN: the purchase draw of every row,
        which ``Y`` shows on the clicked rows only; the conversion label over the whole
        exposure space, for evaluating CVR models such as :class:`regmtl.deep.ESMM`),
        ``source`` ("synthetic"), ``DESCR``.

    Examples
    --------
    >>> from regmtl.datasets import make_recommender_tasks
    >>> data = make_recommender_tasks(1000, 50, 40, 4, random_state=0)
    >>> data.X.shape, data.Y.shape, data.target_names
    ((1000, 10), (1000, 3), ['click', 'purchase', 'rating'])

    The ids alone (user, item, item category), e.g. for
    :class:`regmtl.deep.FeatureColumns`:

    >>> ids = {"user": data.user, "item": data.item, "category": data.category}
    >>> data.n_categories, ids["category"].dtype, bool((data.category < 20).all())
    (20, dtype('int64'), True)
    >>> bool((data.category == data.item_category[data.item]).all())
    True
    """
    check_int("n_samples", n_samples, 1)
    check_int("n_users", n_users, 1)
    check_int("n_items", n_items, 1)
    check_int("n_features", n_features, 2, None,
              "even: n_features // 2 latent factors per side")
    if n_features % 2:
        raise ValueError("n_features must be an even int (n_features // 2 latent factors for "
                         f"users and for items); got {n_features!r}.")
    check_open_unit("click_rate", click_rate)
    check_open_unit("purchase_rate", purchase_rate)
    if n_categories is None:
        n_categories = min(20, int(n_items))
    check_int("n_categories", n_categories, 1, int(n_items),
              "each category holds at least one item")
    n, n_u, n_i, k = int(n_samples), int(n_users), int(n_items), int(n_features) // 2
    G = int(n_categories)
    rng = as_rng(random_state)

    # users, then items, then impressions, then per-row noises and uniforms (fixed order)
    Uf = rng.standard_normal((n_u, k))
    activity = rng.standard_normal(n_u)
    Vf = rng.standard_normal((n_i, k))
    popularity, quality, z_price = rng.standard_normal((3, n_i))
    log_price = 0.5 * quality + np.sqrt(0.75) * z_price
    U_obs = Uf + 0.5 * rng.standard_normal((n_u, k))
    V_obs = Vf + 0.5 * rng.standard_normal((n_i, k))
    quality_obs, popularity_obs = (np.stack([quality, popularity])
                                   + 0.5 * rng.standard_normal((2, n_i)))
    activity_obs = activity + 0.5 * rng.standard_normal(n_u)

    user = rng.integers(0, n_u, size=n)
    shown = np.exp(0.5 * (popularity - popularity.max()))
    item = rng.choice(n_i, size=n, p=shown / shown.sum())
    eps_c, eps_p, eps_r = rng.standard_normal((3, n))
    u_click, u_buy = rng.random((2, n))

    fit = np.einsum("ij,ij->i", Uf[user], Vf[item]) / np.sqrt(k)
    g_c = fit + 0.7 * popularity[item] + 0.5 * activity[user] + 0.5 * eps_c
    alpha_c = _intercept(g_c, click_rate)
    p_click = _sigmoid(alpha_c + g_c)
    click = u_click < p_click
    g_p = 0.8 * fit + 0.8 * quality[item] - 0.8 * log_price[item] + 0.5 * eps_p
    alpha_p = _intercept(g_p[click] if click.any() else g_p, purchase_rate)
    p_buy = _sigmoid(alpha_p + g_p)
    would_buy = u_buy < p_buy  # drawn on every row: the purchase had the row been clicked
    buy = click & would_buy
    rating = 1.0 + 4.0 * _sigmoid(0.8 + quality[item] + 0.6 * fit + 0.5 * eps_r)

    # item categories: drawn last, so nothing above depends on them
    profile = np.column_stack([Vf, quality])
    seeds = rng.choice(n_i, size=G, replace=False)
    dist = ((profile[:, None, :] - profile[None, seeds, :]) ** 2).sum(axis=2)
    item_category = np.argmin(dist, axis=1).astype(np.int64)
    item_category[seeds] = np.arange(G)  # a seed is its own category's (ties at distance 0)

    Y = np.full((n, 3), np.nan)
    Y[:, 0] = click
    Y[click, 1] = buy[click]
    Y[buy, 2] = rating[buy]
    X = np.column_stack([
        U_obs[user], V_obs[item], U_obs[user] * V_obs[item],
        log_price[item], quality_obs[item], popularity_obs[item], activity_obs[user],
    ])
    feature_names = ([f"user_{j}" for j in range(k)] + [f"item_{j}" for j in range(k)]
                     + [f"user_x_item_{j}" for j in range(k)]
                     + ["item_log_price", "item_quality_score", "item_popularity_score",
                        "user_activity_score"])

    title = "Synthetic recommender tasks"
    descr = (
        f"{title}\n{'-' * len(title)}\n\n"
        f"{n} impressions of {n_i} items to {n_u} users; k = {k} latent factors per side.\n"
        "Tasks: click (binary, every row), purchase (binary, observed only where click = 1,\n"
        "NaN elsewhere), rating (regression in (1, 5), observed only where purchase = 1).\n"
        "fit a = u_i.v_j / sqrt(k); s = logistic function; e ~ N(0, 1) noises;\n"
        "click    ~ Bernoulli(s(alpha_c + a + 0.7 popularity + 0.5 activity + 0.5 e)),\n"
        "purchase ~ Bernoulli(s(alpha_p + 0.8 a + 0.8 quality - 0.8 log_price + 0.5 e)),\n"
        "rating   = 1 + 4 s(0.8 + quality + 0.6 a + 0.5 e);\n"
        f"alpha_c = {alpha_c:.4g} and alpha_p = {alpha_p:.4g} set for click_rate = "
        f"{click_rate:g} and purchase_rate = {purchase_rate:g} (among clicks).\n"
        f"Realized: {click.mean():.3f} clicked, {buy.sum()} purchases.\n"
        f"Items in {G} categories: the nearest of {G} seed items in (item factors, quality).\n"
        "X: noisy user and item factors, their products, item log price, noisy item quality\n"
        "and popularity scores and a noisy user activity score.\n"
        "The exact model: help(regmtl.datasets.make_recommender_tasks).\n"
    )
    return Bunch(
        X=X, Y=Y, kinds={"click": "binary", "purchase": "binary", "rating": "regression"},
        user=user.astype(np.int64), item=item.astype(np.int64),
        category=item_category[item], item_category=item_category, n_categories=G,
        feature_names=feature_names, target_names=list(RECOMMENDER_TARGETS),
        user_factors=Uf, item_factors=Vf,
        intercept={"click": float(alpha_c), "purchase": float(alpha_p)},
        click_probability=p_click, conversion_probability=p_buy,
        purchase_if_clicked=would_buy.astype(np.float64),
        source="synthetic", DESCR=descr,
    )


# --------------------------------------------------------------------- helpers
def _sigmoid(f: np.ndarray) -> np.ndarray:
    """Logistic function, without overflow."""
    return 0.5 * (1.0 + np.tanh(0.5 * f))


def _intercept(g: np.ndarray, rate: float, n_iter: int = 100) -> float:
    """The alpha with mean(sigmoid(alpha + g)) = rate (bisection; the mean increases with it)."""
    logit = np.log(rate / (1.0 - rate))
    lo, hi = logit - g.max() - 1.0, logit - g.min() + 1.0
    for _ in range(n_iter):
        mid = 0.5 * (lo + hi)
        if _sigmoid(mid + g).mean() < rate:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _pearson(Y: np.ndarray) -> np.ndarray:
    """Pearson correlation of the columns of Y; NaN for a constant column (no warnings)."""
    Z = Y - Y.mean(axis=0)
    norms = np.sqrt(np.einsum("ij,ij->j", Z, Z))
    ok = norms > 0
    Z[:, ok] /= norms[ok]
    C = Z.T @ Z
    C[~ok, :] = np.nan
    C[:, ~ok] = np.nan
    np.fill_diagonal(C, np.where(ok, 1.0, np.nan))
    return np.clip(C, -1.0, 1.0)
