"""scikit-learn's estimator checks on the single-task form (1-D y, no task ids).

With a 1-D ``y`` and no ``task`` both estimators are ordinary single-task models (design.rst
section 3), so scikit-learn's common checks apply unchanged. No check is marked as expected to fail.
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from regmtl import MultiTaskClassifier, MultiTaskRegressor


@parametrize_with_checks([MultiTaskRegressor(), MultiTaskClassifier()])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)
