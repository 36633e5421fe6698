"""Champion rules: whether a challenger replaces the champion. A pure, versioned rule engine.

Both models are measured on the challenger's out-of-time test (the same rows), and the rules of the
spec's `replacement` block (versioned by its `rule_version`) are applied in this order:

1. no champion                                           -> promote the challenger
2. challenger identical to the champion (same hash)      -> keep
3. challenger below minimum quality (min_auc, positives) -> keep
4. AUC uplift < min_auc_uplift, or DeLong p >= alpha     -> keep
5. top-decile lift lower than the champion's by more than max_lift_drop -> veto (keep)
6. otherwise                                             -> replace

The DeLong p-value is two-sided: a difference is required to be significant in either direction
before the direction (rule 4's uplift) is read.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from factory_assets.core.model import metrics
from factory_assets.core.model.calibration import Calibrator
from factory_assets.core.model.delong import delong_test
from factory_assets.core.specs import ReplacementRules

Outcome = Literal["promote", "replace", "keep", "veto"]


@dataclass(frozen=True)
class SameTestComparison:
    """Challenger and champion metrics on the same out-of-time test, with DeLong's p-value."""

    challenger: dict[str, object]
    champion: dict[str, object] | None
    delong_p: float | None

    @property
    def auc_uplift(self) -> float | None:
        """Challenger AUC minus champion AUC on the same test (None without a champion)."""
        if self.champion is None:
            return None
        return float(self.challenger["auc"]) - float(self.champion["auc"])


@dataclass(frozen=True)
class Verdict:
    """The outcome of the rules, a one-line reason and the version live afterwards."""

    outcome: Outcome
    reason: str
    live_version: str
    rule_version: str


def compare_on_test(
    y: np.ndarray,
    challenger_scores: np.ndarray,
    challenger_beta: float,
    champion_scores: np.ndarray | None,
    champion_beta: float | None,
    challenger_calibrator: Calibrator | None = None,
    champion_calibrator: Calibrator | None = None,
) -> SameTestComparison:
    """Metrics of both models on the same labelled rows.

    Sample-scale scores, corrected by each model's beta and mapped by its own calibrator; the
    models may be of different families (the rules read only their scores).
    """
    challenger = metrics.evaluate(y, challenger_scores, challenger_beta, challenger_calibrator)
    if champion_scores is None or champion_beta is None:
        return SameTestComparison(challenger, None, None)
    champion = metrics.evaluate(y, champion_scores, champion_beta, champion_calibrator)
    p_value = delong_test(y, challenger_scores, champion_scores).p_value
    return SameTestComparison(challenger, champion, p_value)


def _quality_problem(challenger: dict[str, object], rules: ReplacementRules) -> str | None:
    auc, positives = float(challenger["auc"]), int(challenger["positives"])
    if auc < rules.min_auc:
        return f"challenger AUC {auc:.4f} < minimum {rules.min_auc}"
    if positives < rules.min_test_positives:
        return f"test holds {positives} positives < minimum {rules.min_test_positives}"
    return None


def decide(
    challenger_version: str,
    champion_version: str | None,
    comparison: SameTestComparison,
    rules: ReplacementRules,
) -> Verdict:
    """Apply the replacement rules (see the module docstring for their order)."""

    def verdict(outcome: Outcome, reason: str) -> Verdict:
        live = challenger_version if outcome in ("promote", "replace") else champion_version
        return Verdict(outcome, reason, str(live), rules.rule_version)

    if champion_version is None or comparison.champion is None:
        problem = _quality_problem(comparison.challenger, rules)
        note = f" (below minimum quality: {problem})" if problem else ""
        return verdict("promote", f"no champion: the challenger becomes the first champion{note}")
    if challenger_version == champion_version:
        return verdict("keep", "the challenger is identical to the champion (same content hash)")
    problem = _quality_problem(comparison.challenger, rules)
    if problem:
        return verdict("keep", f"challenger below minimum quality: {problem}")
    uplift, p_value = float(comparison.auc_uplift), float(comparison.delong_p)
    auc_text = (
        f"challenger AUC {comparison.challenger['auc']:.4f} vs champion {comparison.champion['auc']:.4f}"
    )
    if uplift < rules.min_auc_uplift:
        return verdict("keep", f"{auc_text}: uplift {uplift:+.4f} < required {rules.min_auc_uplift}")
    if p_value >= rules.delong_alpha:
        return verdict("keep", f"{auc_text}: uplift {uplift:+.4f} not significant (DeLong p={p_value:.4f})")
    lift_ch = float(comparison.challenger["lift_top_decile"])
    lift_champ = float(comparison.champion["lift_top_decile"])
    if lift_champ - lift_ch > rules.max_lift_drop:
        return verdict(
            "veto",
            f"{auc_text} is better, but top-decile lift {lift_ch:.3f} < champion's {lift_champ:.3f} "
            f"by more than {rules.max_lift_drop}",
        )
    return verdict("replace", f"{auc_text}: uplift {uplift:+.4f}, DeLong p={p_value:.4f}; lift {lift_ch:.3f}")
