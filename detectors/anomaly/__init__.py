"""Unsupervised anomaly detection over closed feature windows (issue 8).

``model`` judges one series of feature vectors (say one route's 1-minute windows):
a score, a learnt threshold, and the features that drove the score, each with its
observed and baseline value. ``baseline`` holds the cheap per-feature robust baseline
those explanations are read from. Features, windows and the detector that turns
verdicts into findings live beside them.
"""
