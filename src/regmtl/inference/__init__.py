"""Inference on a fitted linear model: information criteria and the degrees of freedom they
charge (``criteria``)."""
