"""Labels taken from the probabilities equal the estimator's own ``predict``."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.datasets import make_classification
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from pilothouse.modelpkg.formats.sklearn import SklearnPredictor


@pytest.mark.parametrize(
    "estimator",
    [
        LogisticRegression(max_iter=500),
        make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)),
        RandomForestClassifier(n_estimators=10, random_state=0),
        GradientBoostingClassifier(n_estimators=10, random_state=0),
        CalibratedClassifierCV(SVC(), ensemble=False),  # not in the list: two calls, exact
    ],
    ids=["logreg", "pipeline", "forest", "boosting", "calibrated-svc"],
)
@pytest.mark.parametrize("classes", [2, 3])
def test_single_call_labels_match_predict(estimator: object, classes: int) -> None:
    x, y = make_classification(n_samples=300, n_features=6, n_informative=4, n_classes=classes,
                               random_state=1)  # fmt: skip
    estimator.fit(x, y)  # type: ignore[attr-defined]
    predictor = SklearnPredictor(estimator, None, None)
    probe = np.random.default_rng(2).normal(size=(500, 6)) * 3
    labels, proba = predictor.predict_with_proba(probe)
    assert np.array_equal(labels, estimator.predict(probe))  # type: ignore[attr-defined]
    assert np.allclose(proba, estimator.predict_proba(probe))  # type: ignore[attr-defined]
