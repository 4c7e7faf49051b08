
import numpy as np
import pytest
from conftest import DATA_HOME, needs_data

from regmtl.datasets import load_school, train_test_split_per_task

SHARED_DATA = DATA_HOME


@pytest.fixture(scope="module")
def school():
    return load_school()


def test_load_school_shapes(school):
    assert len(school.X) == len(school.y) == len(school.task_names) == 139
    assert school.task_names[0] == "school_001" and school.task_names[-1] == "school_139"
    assert len(school.feature_names) == len(set(school.feature_names)) == 28
    n = [X.shape[0] for X in school.X]
    assert sum(n) == 15362 and min(n) == 22 and max(n) == 251
    for X, y in zip(school.X, school.y, strict=True):
        assert X.dtype == np.float64 and y.dtype == np.float64
        assert X.shape == (y.shape[0], 28) and y.ndim == 1
        assert np.all(X[:, 27] == 1.0)
    y = np.concatenate(school.y)
    assert y.min() == 1 and y.max() == 70 and np.all(y == np.round(y))
    assert "Goldstein" in school.DESCR and "MALSAR" in school.source


def test_school_feature_groups(school):
    """Dummy groups are one-hot; school-level dummies are constant within a school."""
    X = np.vstack(school.X)
    names = school.feature_names
    col = {name: j for j, name in enumerate(names)}
    groups = [names[0:3], names[5:7], names[10:21], names[21:24], names[24:27]]
    for g in groups:
        assert np.all(X[:, [col[c] for c in g]].sum(axis=1) == 1), g
    vr = X[:, 7:10].sum(axis=1)
    assert np.sum(vr == 0) == 15 and np.all(vr <= 1)  # 15 students have no VR band
    for Xt in school.X:
        assert np.all(np.ptp(Xt[:, 21:27], axis=0) == 0)
    # student gender agrees with single-sex schools
    assert np.all(X[X[:, col["school_girls"]] == 1, col["female"]] == 1)
    assert np.mean(X[X[:, col["school_boys"]] == 1, col["male"]]) > 0.999


def test_load_school_as_frame(school):
    frame_bunch = load_school(as_frame=True)
    assert list(frame_bunch.X[3].columns) == school.feature_names
    np.testing.assert_array_equal(frame_bunch.X[3].to_numpy(), school.X[3])
    np.testing.assert_array_equal(frame_bunch.y[3].to_numpy(), school.y[3])
    frame = frame_bunch.frame
    assert frame.shape == (15362, 30)
    assert frame["school"].nunique() == 139


@needs_data("school", "school.mat")
def test_load_school_equals_mat(school):
    import scipy.io

    mat = scipy.io.loadmat(SHARED_DATA / "school" / "school.mat")
    Xm, Ym = mat["X"].ravel(), mat["Y"].ravel()
    assert len(Xm) == 139
    for t in range(139):
        np.testing.assert_array_equal(school.X[t], Xm[t].astype(np.float64))
        np.testing.assert_array_equal(school.y[t], Ym[t].ravel().astype(np.float64))


def _sorted_rows(X, y):
    rows = np.column_stack([X, y])
    return rows[np.lexsort(rows.T[::-1])]


def test_split_deterministic_and_proportions(school):
    a = train_test_split_per_task(school.X, school.y, test_size=0.25, random_state=0)
    b = train_test_split_per_task(school.X, school.y, test_size=0.25, random_state=0)
    c = train_test_split_per_task(school.X, school.y, test_size=0.25, random_state=1)
    for part_a, part_b in zip(a, b, strict=True):
        assert len(part_a) == 139
        for u, v in zip(part_a, part_b, strict=True):
            np.testing.assert_array_equal(u, v)
    assert any(not np.array_equal(u, v) for u, v in zip(a[1], c[1], strict=True))
    Xtr, Xte, ytr, yte = a
    for X, y, Xa, Xb, ya, yb in zip(school.X, school.y, Xtr, Xte, ytr, yte, strict=True):
        n = X.shape[0]
        assert len(Xb) == len(yb) == int(np.ceil(0.25 * n))
        assert len(Xa) == len(ya) == n - len(Xb)
        # train + test is the task's rows, each row with its own label
        assert _sorted_rows(np.vstack([Xa, Xb]), np.concatenate([ya, yb])).tolist() == \
            _sorted_rows(X, y).tolist()
    assert sum(len(y) for y in yte) / 15362 == pytest.approx(0.25, abs=0.01)


def test_split_validates_lengths():
    with pytest.raises(ValueError, match="tasks"):
        train_test_split_per_task([np.zeros((4, 2))], [np.zeros(4), np.zeros(4)])


def test_school_fixed_splits_partition_tasks(school):
    assert school.kind == "regression"
    assert len(school.splits) == 10
    n = [X.shape[0] for X in school.X]
    for train, test in school.splits:
        assert len(train) == len(test) == 139
        for n_t, tr, te in zip(n, train, test, strict=True):
            assert tr.dtype.kind == te.dtype.kind == "i"
            assert len(tr) >= 16 and len(te) >= 6
            np.testing.assert_array_equal(np.sort(np.concatenate([tr, te])), np.arange(n_t))
        n_test = sum(len(te) for te in test)
        assert n_test == 3890 and n_test / 15362 == pytest.approx(0.25, abs=0.01)
    # the ten splits differ
    assert len({tuple(np.concatenate(te)) for _, te in school.splits}) == 10


def test_apply_split(school):
    from regmtl.datasets import apply_split

    train, test = school.splits[3]
    Xtr, Xte, ytr, yte = apply_split(school.X, school.y, school.splits[3])
    assert len(Xtr) == len(Xte) == len(ytr) == len(yte) == 139
    np.testing.assert_array_equal(Xtr[5], school.X[5][train[5]])
    np.testing.assert_array_equal(yte[7], school.y[7][test[7]])
    frames = load_school(as_frame=True)
    Ftr, _, Str, _ = apply_split(frames.X, frames.y, school.splits[3])
    np.testing.assert_array_equal(Ftr[5].to_numpy(), Xtr[5])
    np.testing.assert_array_equal(Str[5].to_numpy(), ytr[5])
    with pytest.raises(ValueError, match="tasks"):
        apply_split(school.X[:3], school.y[:3], school.splits[0])


ARGYRIOU = SHARED_DATA / "school_argyriou"


@needs_data("school_argyriou", "school_10_indexes.mat")
def test_school_splits_equal_mat(school):
    """The shipped rows are the columns of school_b.mat; the splits are its 1-based indexes."""
    import scipy.io

    b = scipy.io.loadmat(ARGYRIOU / "school_b.mat")
    np.testing.assert_array_equal(np.vstack(school.X), b["x"].T.astype(np.float64))
    np.testing.assert_array_equal(np.concatenate(school.y), b["y"].ravel().astype(np.float64))
    starts = np.cumsum([0] + [len(y) for y in school.y])[:-1]
    np.testing.assert_array_equal(b["task_indexes"].ravel() - 1, starts)
    for i, (train, test) in enumerate(school.splits, start=1):
        mat = scipy.io.loadmat(ARGYRIOU / f"school_{i}_indexes.mat")
        for key, part in (("tr", train), ("tst", test)):
            global_idx = np.concatenate([s + idx for s, idx in zip(starts, part, strict=True)])
            np.testing.assert_array_equal(global_idx + 1, mat[key].ravel())
            block_starts = np.cumsum([0] + [len(idx) for idx in part])[:-1]
            np.testing.assert_array_equal(block_starts + 1, mat[f"{key}_indexes"].ravel())
