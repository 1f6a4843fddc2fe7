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
    "agreement": "Per group, question, metric and correlation (pearson, spearman, kendall): "
                 "statistic (correlation over candidates between the metric and the mean "
                 "rating), ci_low/ci_high (crossed candidate x participant bootstrap, "
                 "variance-corrected percentile interval), noise_ceiling (split-half "
                 "reliability of the candidate means, Spearman-Brown), disattenuated "
                 "(statistic / sqrt(noise_ceiling): the estimate of the estimand, the "
                 "correlation with the expected rating of infinitely many raters) with "
                 "disattenuated_low/high, n_candidates, n_participants, n_responses (counts "
                 "actually used).",
    "group_differences": "Per question, metric and pair of groups: r_a, r_b, difference "
                         "(r_a - r_b) with ci_low/ci_high and p from the crossed bootstrap "
                         "(same candidate draw for both groups), p_adjusted (Holm over every "
                         "metric x group pair of the question), p_bh, the disattenuated "
                         "difference with its interval, pearson_a/b, and fisher_z/fisher_p "
                         "(independent-samples Fisher test, for reference only).",
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
               "(Satterthwaite), ci_low, ci_high, p (t on df), p_adjusted (Holm within the "
               "family and question), ordinal_p and ordinal_same_direction (the same contrast "
               "in the model on mid-ranks).",
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
                     "bootstrap intervals and win rates.",
    "rankings": "Per ranking question and group: mean ranks with intervals and Plackett-Luce "
                "log-strengths (responses with tied ranks left out).",
    "warnings": "Every guard that fired and every analysis that could not run, with why.",
    "config_sha256": "SHA-256 of study_config.json.",
}
