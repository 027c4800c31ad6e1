"""Analysis scripts for other packages: SPSS syntax (``analysis.sps``) and R (``analysis.R``).

Each script reads the files ``assess score`` wrote beside it and reproduces the primary table of
the report (descriptives, the Wilcoxon signed-rank test per region, arm and follow-up, responders);
the R script also the reliability table (kappa, ICC). They are generated from the same
comparisons as the report, so every block of output answers one row of ``summary.csv``; the
package's numbers are the independent check of the scorer's.
"""

from __future__ import annotations

import pandas as pd

from .export import Wide

__all__ = ["spss_syntax", "r_script", "spss_blocks"]


def _quote(text: str) -> str:
    """A string literal for SPSS syntax or R (single quotes doubled / escaped)."""
    return "'" + str(text).replace("'", "''") + "'"


def spss_blocks(wide: Wide, summary: pd.DataFrame, arms: list[str]) -> list[dict]:
    """One entry per within-arm row of ``summary`` that the wide file can reproduce, in the
    order of ``analysis.sps``: the comparison's variables, the arm and its code."""
    within = summary[summary["analysis"].str.startswith("within")]
    blocks = []
    for comp in wide.comparisons:
        for code, arm in enumerate(arms, start=1):
            rows = within[(within["region"] == comp["region"]) & (within["view"] == comp["view"])
                          & (within["scale"] == comp["scale"]) & (within["rater"] == comp["rater"])
                          & (within["timepoint"] == comp["timepoint"]) & (within["arm"] == arm)]
            if len(rows):
                blocks.append({**comp, "arm": arm, "arm_code": code,
                               "scale_kind": rows["scale_kind"].iloc[0],
                               "test": str(rows["test"].iloc[0]),
                               "summary_row": int(rows.index[0])})
    return blocks


def spss_syntax(wide: Wide, summary: pd.DataFrame, arms: list[str], title: str = "") -> str:
    """``analysis.sps``: SPSS (and GNU PSPP) syntax reproducing the primary table from
    ``ratings.sav``.

    Per region × scale × follow-up × rater × arm, on the participants with a usable rating at
    both visits: DESCRIPTIVES of baseline, follow-up, change and the responder flag (its SUM is
    the number of responders), EXAMINE for the median and quartiles (HAVERAGE, as the report),
    and NPAR TESTS /WILCOXON (categorical scales: FREQUENCIES, the responders and /SIGN, no means);
    then, for each between-arms row, NPAR TESTS /M-W on the improvement by arm. Each block starts with an ECHO line
    ``BLOCK <n>: ...`` naming the summary row it reproduces.
    """
    blocks = spss_blocks(wide, summary, arms)
    out = [f"* {title}: reproduces the primary table of report.html from ratings.sav.",
           "* Run from the folder holding ratings.sav:  pspp analysis.sps  (or open in SPSS).",
           "* Missing codes 91-95 (cannot assess, by reason), 98 (not rated) and 99 (not",
           "* photographed) are user-missing in ratings.sav and never enter a statistic.",
           "GET FILE='ratings.sav'.", "COMPUTE zero = 0.", "VARIABLE LABELS zero 'Zero'.",
           "FORMATS zero (F1.0)."]
    for b in blocks:  # a VAS has no levels, so no responders
        b["responder"] = b["improvement"] + "_resp" if b["scale_kind"] != "vas" else None
    for name in dict.fromkeys(b["responder"] for b in blocks if b["responder"]):
        source = next(b["improvement"] for b in blocks if b["responder"] == name)
        out += [f"COMPUTE {name} = ({source} >= 1).",
                f"VARIABLE LABELS {name} 'Responder (at least one level better): {source}'.",
                f"FORMATS {name} (F1.0)."]
    out.append("EXECUTE.")
    for n, b in enumerate(blocks, start=1):
        where = b["region"] + (f"/{b['view']}" if b["view"] else "")
        if b["kind"] == "pair":
            valid = f"NOT MISSING({b['improvement']})"
            variables = [b["improvement"], b["responder"]]
            pair = f"zero WITH {b['improvement']} (PAIRED)"
        else:
            valid = f"NOT SYSMIS({b['change']})"
            variables = [b["baseline"], b["followup"], b["change"]] + [b["responder"]] * bool(
                b["responder"])
            pair = f"{b['baseline']} WITH {b['followup']} (PAIRED)"
        select = ["TEMPORARY.", f"SELECT IF (arm = {b['arm_code']} AND {valid})."]
        test = "SIGN" if b["scale_kind"] == "categorical" else "WILCOXON"
        label = f"BLOCK {n}: {where} {b['scale']} {b['timepoint']} rater {b['rater']} arm {b['arm']}"
        out += ["", f"ECHO {_quote(label)}."]
        if b["scale_kind"] == "categorical":
            # Ordered categories without distances: counts and responders, no means.
            out += select + [f"FREQUENCIES VARIABLES={b['baseline']} {b['followup']}."]
            variables = [b["responder"]]
        out += select + [f"DESCRIPTIVES VARIABLES={' '.join(variables)} "
                         "/STATISTICS=MEAN STDDEV MIN MAX SUM."]
        if b["kind"] != "pair" and b["scale_kind"] != "categorical":
            out += select + [f"EXAMINE VARIABLES={b['baseline']} {b['followup']} "
                             "/PERCENTILES(25,50,75)=HAVERAGE /STATISTICS=NONE /PLOT=NONE."]
        if b["test"] == "paired t-test":  # a VAS declared for the paired t-test
            out += select + [f"T-TEST PAIRS={pair}."]
        else:
            out += select + [f"NPAR TESTS /{test}={pair}."]
    out += _between_syntax(wide, summary, arms, len(blocks))
    return "\n".join(out) + "\n"


def between_blocks(wide: Wide, summary: pd.DataFrame, arms: list[str]) -> list[dict]:
    """The Mann–Whitney rows of ``summary`` with the improvement variable they test."""
    rows = summary[summary["analysis"] == "between arms"]
    out = []
    for comp in wide.comparisons:
        match = rows[(rows["region"] == comp["region"]) & (rows["view"] == comp["view"])
                     & (rows["scale"] == comp["scale"]) & (rows["rater"] == comp["rater"])
                     & (rows["timepoint"] == comp["timepoint"])
                     & rows["test"].fillna("").str.startswith(("Mann-Whitney", "Welch"))]
        for _, row in match.iterrows():
            a, b = str(row["arm"]).split(" vs ", 1)
            out.append({**comp, "arms": row["arm"], "test": row["test"],
                        "code_a": arms.index(a) + 1,
                        "code_b": arms.index(b) + 1, "summary_row": int(row.name)})
    return out


def _between_syntax(wide: Wide, summary: pd.DataFrame, arms: list[str], first: int) -> list[str]:
    out = []
    for n, b in enumerate(between_blocks(wide, summary, arms), start=first + 1):
        where = b["region"] + (f"/{b['view']}" if b["view"] else "")
        label = (f"BLOCK {n}: {where} {b['scale']} {b['timepoint']} rater {b['rater']} "
                 f"between {b['arms']}")
        groups = f"arm({b['code_a']} {b['code_b']})"
        out += ["", f"ECHO {_quote(label)}.",
                f"T-TEST GROUPS={groups} /VARIABLES={b['improvement']}."  # Welch: 2nd row
                if str(b["test"]).startswith("Welch") else
                f"NPAR TESTS /M-W={b['improvement']} BY {groups}."]
    return out


def _r_string(text: str) -> str:
    return '"' + str(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


def r_script(scales: dict, timepoints: tuple[str, ...], title: str = "") -> str:
    """``analysis.R``: base R and ``psych`` reproducing the primary and the reliability table
    from ``ratings_long.csv``; writes ``r_summary.csv`` and ``r_reliability.csv`` beside it.

    Primary: per rater × arm × region × view × scale × follow-up, first showings with a usable
    rating at both visits; quartiles of type 6 (SPSS's HAVERAGE), mean change with its t-based CI,
    ``wilcox.test(exact = FALSE, correct = FALSE)`` (zero differences dropped, tie-corrected, as
    SPSS; categorical scales: the exact sign test, ``binom.test``), responders. Reliability: ``psych::cohen.kappa`` over the declared levels (unweighted,
    linear and quadratic weights) for repeats and rater pairs, ``psych::ICC`` (ICC2) across raters.
    """
    used = {s: scales[s] for s in sorted(scales)}
    table = "\n".join(
        f"  {_r_string(s)} = list(better = {_r_string(sc.better)}, kind = {_r_string(sc.kind)}, "
        f"levels = c({', '.join(str(v) for v in sc.values)}), test = {_r_string(sc.test)}),"
        for s, sc in used.items()).rstrip(",")
    return (f"# {title}: reproduces the primary and the reliability table of report.html.\n"
            "# Run from the folder holding ratings_long.csv:  Rscript analysis.R\n"
            "# Needs the psych package (install.packages(\"psych\")) for the reliability table.\n"
            f"timepoints <- c({', '.join(_r_string(t) for t in timepoints)})\n"
            f"scales <- list(\n{table}\n)\n" + _R_BODY)


_R_BODY = r'''
long <- read.csv("ratings_long.csv", fileEncoding = "UTF-8-BOM", stringsAsFactors = FALSE,
                 colClasses = c(view = "character", participant = "character", code = "character"))
long$view[is.na(long$view)] <- ""
first <- long[long$repeat. == 0 & long$cannot_assess == 0, ]
baseline <- timepoints[1]

q6 <- function(v, p) if (length(v)) unname(quantile(v, p, type = 6)) else NA
summary_rows <- list()
singles <- first[first$kind == "single", ]
groups <- unique(singles[, c("rater", "arm", "region", "view", "scale")])
for (g in seq_len(nrow(groups))) {
  key <- groups[g, ]
  rows <- singles[singles$rater == key$rater & singles$arm == key$arm &
                  singles$region == key$region & singles$view == key$view &
                  singles$scale == key$scale, ]
  sc <- scales[[key$scale]]
  for (tp in timepoints[-1]) {
    b <- rows[rows$timepoint == baseline, c("participant", "score")]
    f <- rows[rows$timepoint == tp, c("participant", "score")]
    if (!nrow(f)) next
    both <- merge(b[!duplicated(b$participant), ], f[!duplicated(f$participant), ],
                  by = "participant", suffixes = c(".b", ".f"))
    change <- both$score.f - both$score.b
    improvement <- if (sc$better == "lower") -change else change
    out <- data.frame(rater = key$rater, arm = key$arm, region = key$region, view = key$view,
                      scale = key$scale, timepoint = tp, n_pairs = nrow(both),
                      responders = if (sc$kind == "vas") NA else sum(improvement >= 1))
    if (sc$kind == "vas" && sc$test == "paired-t") {
      tt <- if (nrow(both) > 1 && sd(change) > 0) t.test(improvement) else NULL
      out <- cbind(out, data.frame(
        baseline_mean = mean(both$score.b), baseline_sd = sd(both$score.b),
        followup_mean = mean(both$score.f), followup_sd = sd(both$score.f),
        mean_change = mean(change), sd_change = sd(change),
        change_ci_low = if (is.null(tt)) NA else t.test(change)$conf.int[1],
        change_ci_high = if (is.null(tt)) NA else t.test(change)$conf.int[2],
        t = if (is.null(tt)) NA else unname(tt$statistic),
        p = if (is.null(tt)) NA else tt$p.value))
    } else if (sc$kind != "categorical") {
      ci <- if (nrow(both) > 1 && sd(change) > 0) t.test(change)$conf.int else c(NA, NA)
      w <- if (any(improvement != 0)) wilcox.test(improvement, mu = 0, exact = FALSE,
                                                   correct = FALSE) else NULL
      out <- cbind(out, data.frame(
        baseline_median = q6(both$score.b, .5), baseline_q1 = q6(both$score.b, .25),
        baseline_q3 = q6(both$score.b, .75), followup_median = q6(both$score.f, .5),
        followup_q1 = q6(both$score.f, .25), followup_q3 = q6(both$score.f, .75),
        baseline_mean = mean(both$score.b), baseline_sd = sd(both$score.b),
        followup_mean = mean(both$score.f), followup_sd = sd(both$score.f),
        mean_change = mean(change), sd_change = sd(change),
        change_ci_low = ci[1], change_ci_high = ci[2],
        wilcoxon_v = if (is.null(w)) NA else unname(w$statistic),
        p = if (is.null(w)) NA else w$p.value,
        z = if (is.null(w)) NA else qnorm(w$p.value / 2)))
    }
    if (sc$kind == "categorical") {
      moved <- sum(improvement != 0)
      out$p <- if (moved) binom.test(sum(improvement > 0), moved)$p.value else NA
    }
    summary_rows[[length(summary_rows) + 1]] <- out
  }
}
pairs <- first[first$kind == "pair", ]
for (key in split(pairs, list(pairs$rater, pairs$arm, pairs$region, pairs$view, pairs$scale,
                              pairs$timepoint), drop = TRUE)) {
  imp <- key$improvement
  w <- if (any(imp != 0)) wilcox.test(imp, mu = 0, exact = FALSE, correct = FALSE) else NULL
  summary_rows[[length(summary_rows) + 1]] <- data.frame(
    rater = key$rater[1], arm = key$arm[1], region = key$region[1], view = key$view[1],
    scale = key$scale[1], timepoint = key$timepoint[1], n_pairs = length(imp),
    responders = sum(imp >= 1), mean_change = mean(imp),
    p = if (is.null(w)) NA else w$p.value, z = if (is.null(w)) NA else qnorm(w$p.value / 2))
}
all_names <- unique(unlist(lapply(summary_rows, names)))
summary_rows <- lapply(summary_rows, function(d) { d[setdiff(all_names, names(d))] <- NA; d })
r_summary <- do.call(rbind, summary_rows)
write.csv(r_summary, "r_summary.csv", row.names = FALSE)
print(r_summary)

iccs <- function(a, b) {
  i2 <- psych::ICC(cbind(a, b), lmer = FALSE)$results
  i2 <- i2[i2$type == "ICC2", ]
  data.frame(n = length(a), icc = i2$ICC, icc_ci_low = i2$`lower bound`,
             icc_ci_high = i2$`upper bound`)
}
kappas <- function(a, b, levels) {
  if (!length(levels)) return(iccs(a, b))  # a VAS: the ICC instead of kappa
  k <- length(levels)
  d <- abs(outer(seq_len(k), seq_len(k), "-"))
  x <- data.frame(a = factor(a, levels = levels), b = factor(b, levels = levels))
  value <- function(w) {
    res <- tryCatch(psych::cohen.kappa(x, w = w, levels = levels), error = function(e) NULL)
    if (is.null(res)) return(c(NA, NA, NA))
    res$confid[2, ]
  }
  plain <- tryCatch(psych::cohen.kappa(x, levels = levels)$confid[1, ], error = function(e)
    c(NA, NA, NA))
  lin <- value(1 - d / (k - 1))
  quad <- value(1 - d^2 / (k - 1)^2)
  data.frame(n = length(a), kappa = plain[2], kappa_ci_low = plain[1], kappa_ci_high = plain[3],
             kappa_linear = lin[2], kappa_linear_ci_low = lin[1], kappa_linear_ci_high = lin[3],
             kappa_quadratic = quad[2], kappa_quadratic_ci_low = quad[1],
             kappa_quadratic_ci_high = quad[3])
}
value_of <- function(d) ifelse(d$kind == "single", d$score, d$improvement)
rel_rows <- list()
usable <- long[long$cannot_assess == 0, ]
usable$value <- value_of(usable)
reps <- usable[usable$repeat. == 1, ]
firsts <- usable[usable$repeat. == 0, c("rater", "code", "value")]
if (nrow(reps)) {
  m <- merge(reps, firsts, by.x = c("rater", "first_showing"), by.y = c("rater", "code"),
             suffixes = c(".repeat", ".first"))
  for (key in split(m, list(m$kind, m$scale, m$rater), drop = TRUE)) {
    levels <- if (key$kind[1] == "pair") -2:2 else scales[[key$scale[1]]]$levels
    rel_rows[[length(rel_rows) + 1]] <- cbind(
      data.frame(analysis = paste0("intra-rater (repeats)", if (key$kind[1] == "pair") ", pairs"
                                   else ""), scale = key$scale[1], raters = key$rater[1]),
      kappas(key$value.first, key$value.repeat, levels))
  }
}
raters <- unique(first$rater)
if (length(raters) >= 2) {
  f <- usable[usable$repeat. == 0, ]
  for (key in split(f, list(f$kind, f$scale), drop = TRUE)) {
    wide <- reshape(key[, c("code", "rater", "value")], idvar = "code", timevar = "rater",
                    direction = "wide")
    wide <- wide[, paste0("value.", raters[paste0("value.", raters) %in% names(wide)]), drop = FALSE]
    names(wide) <- sub("^value\\.", "", names(wide))
    complete <- na.omit(wide)
    levels <- if (key$kind[1] == "pair") -2:2 else scales[[key$scale[1]]]$levels
    row <- data.frame(analysis = paste0("inter-rater", if (key$kind[1] == "pair") ", pairs" else ""),
                      scale = key$scale[1], raters = paste(names(wide), collapse = " & "),
                      n = nrow(complete))
    if (scales[[key$scale[1]]]$kind != "categorical" || key$kind[1] == "pair") {
      icc <- psych::ICC(as.matrix(complete), lmer = FALSE)$results
      i2 <- icc[icc$type == "ICC2", ]
      row <- cbind(row, data.frame(icc = i2$ICC, icc_ci_low = i2$`lower bound`,
                                   icc_ci_high = i2$`upper bound`, icc_f = i2$F, icc_p = i2$p))
    }
    rel_rows[[length(rel_rows) + 1]] <- row
    for (pair in combn(names(wide), 2, simplify = FALSE)) {
      both <- na.omit(wide[, pair])
      rel_rows[[length(rel_rows) + 1]] <- cbind(
        data.frame(analysis = paste0("inter-rater, rater pair", if (key$kind[1] == "pair")
                   ", pairs" else ""), scale = key$scale[1], raters = paste(pair, collapse = " & ")),
        kappas(both[[1]], both[[2]], levels))
    }
  }
}
if (length(rel_rows)) {
  all_names <- unique(unlist(lapply(rel_rows, names)))
  rel_rows <- lapply(rel_rows, function(d) { d[setdiff(all_names, names(d))] <- NA; d })
  r_reliability <- do.call(rbind, rel_rows)
  write.csv(r_reliability, "r_reliability.csv", row.names = FALSE)
  print(r_reliability)
}
'''
