"""Statistics for study reports: pure functions on pandas/numpy, no Django.

Modules:
    tidy: exclusion rules on the tidy response frame, recorded, never silent.
    reliability: Krippendorff's alpha, Shrout-Fleiss ICCs, split-half reliability.
    correlation: metric-human agreement with participant bootstrap intervals,
        Fisher r-to-z and permutation tests between groups, multiplicity correction.
    pairwise: Bradley-Terry strengths, win rates, Plackett-Luce and mean ranks.
    mixed: linear mixed models (statsmodels MixedLM) and the in-group contrast.
"""
