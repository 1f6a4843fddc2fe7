"""Statistics for study reports: pure functions on pandas/numpy, no Django.

Modules:
    tidy: exclusion rules on the tidy response frame, recorded, never silent.
    reliability: Krippendorff's alpha, Shrout-Fleiss ICCs, split-half reliability.
    correlation: metric-human agreement with crossed (candidate x participant)
        bootstrap intervals, noise ceiling and disattenuation; group differences
        on the same candidates; Fisher r-to-z; multiplicity correction.
    pairwise: Bradley-Terry strengths, win rates, Plackett-Luce and mean ranks.
    mixed: crossed linear mixed models (REML), estimated marginal means and named
        contrasts with Satterthwaite df, the in-group contrast, an ordinal check.
    crossed: REML from sufficient statistics, Satterthwaite degrees of freedom.
    guards: minimum data for inference and the warnings when data fall short.
    minimums: the minimums themselves (no pandas: the go-live checklist reads them too).
    simulate: simulated studies with known truths (tests, calibration).
"""
