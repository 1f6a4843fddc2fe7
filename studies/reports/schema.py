"""What ``results.json`` holds, key by key; written into ``codebook.json`` as ``results_schema``.

Every interval row has ``ci_low``/``ci_high``; every test row ``p`` (or
``pvalue``) and ``p_adjusted`` with its declared family.
"""

from __future__ import annotations

RESULTS_SCHEMA: dict[str, str] = {
    "title": "Report title.",
    "options": "Analysis settings: resamples, confidence level, compared correlation, seed, "
               "exclusion rules, design minimums (participants, candidates, ratings per "
               "candidate per group and question), extra Krippendorff levels.",
    "n_rows": "Tidy rows before exclusions.",
    "n_rows_analysed": "Rows actually analysed: after exclusions, with a score and a candidate.",
    "n_participants": "Participants with at least one analysed row.",
    "exclusions": "Per exclusion rule: rows, responses and participants removed, rows left.",
    "excluded_participants": "Participant id -> reason.",
    "metrics": "Metric columns found.",
    "set_metrics": "Set metrics (FID, KID, ArtFID) per method, style culture and metric, as in "
                   "set_metrics.csv.",
    "descriptive": "Per question and group: n_participants, n_candidates, n_ratings, "
                   "mean_score, sd_score, inference (false: below the minimums, descriptive "
                   "statistics only).",
    "agreement": "Per group, question, metric and correlation (pearson, spearman, kendall), "
                 "two estimands over the population of candidates, each with its own "
                 "interval (crossed candidate x participant bootstrap, variance-corrected "
                 "percentile interval). Primary: disattenuated with disattenuated_low/high, "
                 "the correlation between the metric and the group's expected rating (what "
                 "infinitely many raters of the group would give), estimated as statistic / "
                 "sqrt(noise_ceiling) (split-half reliability of the candidate means, "
                 "Spearman-Brown). Uncorrected: statistic with ci_low/ci_high, the "
                 "correlation between the metric and the mean of k ratings of the candidate "
                 "by the group's raters, k = ratings_per_candidate (harmonic mean of the "
                 "study's ratings per candidate); smaller than the primary by about "
                 "sqrt(reliability of a k-rating mean), and its interval covers this "
                 "quantity, not the primary one. n_candidates, n_participants, n_responses "
                 "(counts actually used).",
    "group_differences": "Per question, metric and pair of groups: r_a, r_b, difference "
                         "(r_a - r_b, uncorrected: the difference of the groups' correlations "
                         "with the mean of their own k ratings per candidate) with "
                         "ci_low/ci_high and p from the crossed bootstrap (same candidate draw "
                         "for both groups; H0: equal uncorrected agreement), p_adjusted (Holm "
                         "over every metric x group pair of the question; the declared test), "
                         "p_bh, disattenuated_difference (difference of the primary "
                         "estimands) with disattenuated_low/high, pearson_a/b, and "
                         "fisher_z/fisher_p (independent-samples Fisher test, for reference "
                         "only).",
    "reliability": "Per question and group: Krippendorff's alpha at the level that fits the "
                   "question kind (ordinal and interval for Likert, nominal for 2AFC; others "
                   "on request), split-half reliability with its split range, ICC(2,1)/(2,k) "
                   "where a complete block exists.",
    "mixed_models": "Per Likert question: formula (effects coding), random_effects, "
                    "variance_components, fixed_effects, fit_note (how the data were reduced, "
                    "e.g. to candidate x group cell means at a million responses), scale "
                    "(interval primary, ordinal check on mid-ranks), contrasts (as in "
                    "effects, keyed by term).",
    "effects": "Named contrasts of estimated marginal means, one row each: question, term "
               "(in_group; method:a-b; method:a-b x group:g-h), family, estimate, se, df "
               "(Satterthwaite), ci_low, ci_high, p (t on df, unadjusted), p_adjusted (Holm "
               "within the family and question; the declared test of each family), "
               "ordinal_p and ordinal_same_direction (the same contrast in the model on "
               "mid-ranks).",
    "marginal_means": "Estimated marginal means of the mixed model (equal weights over the "
                      "other factors' levels, as emmeans), one row each: question, factor "
                      "(method; group; in_group), level (a method; a group; own group / other "
                      "groups), group (the participant group the mean is computed within, null: "
                      "averaged over groups; method rows per group are the method x group "
                      "means; in_group rows are a group's ratings of its own culture's styles "
                      "and the other groups' ratings of the same styles, their difference "
                      "averaged over groups being the in_group effect), estimate, se, df "
                      "(Satterthwaite), ci_low, ci_high (t on df). Inferential, unlike the "
                      "observed cell_means.",
    "bradley_terry": "Per 2AFC question and group: method log-strengths with participant-"
                     "bootstrap intervals (balanced pairs) or posterior intervals (adaptive "
                     "pairs) and win rates; for adaptive pairs, the analysed comparisons by why "
                     "their pair was chosen and how many repeated a pair for a participant.",
    "rankings": "Per ranking question and group: mean ranks with intervals and Plackett-Luce "
                "log-strengths (responses with tied ranks left out).",
    "warnings": "Every guard that fired and every analysis that could not run, with why.",
    "config_sha256": "SHA-256 of study_config.json (this export: it changes with wording, the "
                     "changes made while live, the status and the closing date).",
    "config_hash": "The frozen configuration hash of the study, as the admin shows it (fixed "
                   "when the study went live; empty for a draft or a tidy file).",
}
