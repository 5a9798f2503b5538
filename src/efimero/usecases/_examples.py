"""Small synthetic use cases across 8 departments: the generic pipeline guide's "64 use cases" in miniature.

Each department gets eight use cases in the same mix of tasks (three binary, one multiclass,
two regression, one multi-output regression, one segmentation), each on a seeded generated
table with two algorithms and small grids, so all 64 train in one command in a few minutes
on two cores. Between them they use every algorithm efimero has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from efimero._io import atomic_write_text

DEPARTMENTS: dict[str, list[str]] = {
    "finance": ["credit_risk", "loan_default", "payment_fraud", "invoice_category", "revenue_forecast",
                "cash_flow", "budget_split", "client_tiers"],
    "marketing": ["campaign_response", "email_open", "lead_conversion", "channel_preference", "customer_value",
                  "ad_spend_return", "reach_forecast", "audience_segments"],
    "sales": ["deal_win", "upsell_offer", "renewal", "product_interest", "price_prediction", "quota_attainment",
              "regional_demand", "account_groups"],
    "operations": ["machine_failure", "late_delivery", "quality_defect", "incident_severity", "energy_use",
                   "throughput", "shift_load", "site_clusters"],
    "human_resources": ["attrition", "offer_acceptance", "promotion", "training_track", "salary_band",
                        "time_to_hire", "workload", "team_profiles"],
    "customer_service": ["escalation", "ticket_reopen", "satisfaction", "ticket_topic", "handle_time",
                         "backlog", "queue_mix", "caller_segments"],
    "supply_chain": ["stockout", "supplier_delay", "return_risk", "shipping_mode", "demand_forecast",
                     "lead_time", "warehouse_mix", "supplier_groups"],
    "risk": ["anti_money_laundering", "claim_fraud", "account_takeover", "risk_grade", "loss_given_default",
             "exposure", "scenario_losses", "portfolio_clusters"],
}

_FAST: dict[str, dict[str, Any]] = {
    "logistic_regression": {"grid": {"C": [0.1, 1.0]}},
    "linear_regression": {"grid": {"alpha": [0.1, 10.0]}},
    "random_forest": {"params": {"n_estimators": 40}, "grid": {"max_depth": [None, 8]}},
    "xgboost": {"params": {"n_estimators": 60}, "grid": {"max_depth": [3, 5]}},
    "lightgbm": {"params": {"n_estimators": 60}, "grid": {"num_leaves": [7, 15]}},
    "gradient_boosting": {"params": {"max_iter": 60}, "grid": {"learning_rate": [0.1, 0.3]}},
    "mlp": {"params": {"hidden_layer_sizes": [16], "max_iter": 150}, "grid": {"alpha": [1e-3]}},
    "kmeans": {"grid": {"n_clusters": [3, 4, 5]}},
    "agglomerative": {"grid": {"n_clusters": [3, 4, 5], "linkage": ["ward"]}},
    "dbscan": {"grid": {"eps": [0.6, 1.0], "min_samples": [5]}},
}
"""Small grids and capped rounds: each fit well under a second on a few hundred rows."""

_SLOTS: list[tuple[str, dict[str, Any], list[list[str]]]] = [
    ("binary", {"kind": "classification", "classes": 2}, [["logistic_regression", "lightgbm"]]),
    ("binary", {"kind": "classification", "classes": 2, "missing": 0.05}, [["random_forest", "xgboost"]]),
    ("binary", {"kind": "classification", "classes": 2, "features": 12, "noise": 0.05},
     [["gradient_boosting", "logistic_regression"], ["mlp", "lightgbm"]]),
    ("multiclass", {"kind": "classification", "classes": 3}, [["logistic_regression", "random_forest"]]),
    ("regression", {"kind": "regression"}, [["linear_regression", "lightgbm"]]),
    ("regression", {"kind": "regression", "missing": 0.05}, [["xgboost", "gradient_boosting"]]),
    ("multi_output", {"kind": "regression", "targets": 3}, [["linear_regression", "random_forest"]]),
    ("clustering", {"kind": "blobs", "classes": 4, "features": 4},
     [["kmeans", "agglomerative"], ["kmeans", "dbscan"]]),
]
"""Each department's eight slots: task, generator and the algorithm pairs used in turn."""


def example_specs(count: int = 64, *, seed: int = 0, rows: int = 500) -> list[dict[str, Any]]:
    """``count`` use-case documents (8 departments × 8 slots, repeated with new seeds beyond 64)."""
    documents = []
    names = [(d, i, name) for d, topics in DEPARTMENTS.items() for i, name in enumerate(topics)]
    for n in range(count):
        department, slot, topic = names[n % len(names)]
        task, generator, pairs = _SLOTS[slot]
        round_ = n // len(names)
        key = topic if round_ == 0 else f"{topic}_{round_ + 1}"
        algorithms = pairs[(n // 8 + round_) % len(pairs)]
        data = {**generator, "rows": rows, "seed": seed + n}
        data.setdefault("features", 8)
        documents.append({
            "key": key, "name": topic.replace("_", " ").capitalize(), "department": department,
            "description": f"Generated example {n + 1} of {count}.",
            "data": {"generator": data},
            **({"target": _target(generator)} if task != "clustering" else {}),
            "task": task,
            "algorithms": [{"name": name, **_FAST[name]} for name in algorithms],
            "cv": {"folds": 3},
        })
    return documents


def _target(generator: dict[str, Any]) -> str | list[str]:
    if generator["kind"] == "classification":
        return "label"
    targets = int(generator.get("targets", 1))
    return "target" if targets == 1 else [f"target_{i + 1}" for i in range(targets)]


def write_examples(output: str | Path, *, count: int = 64, seed: int = 0, rows: int = 500) -> list[Path]:
    """Write ``count`` generated use cases as ``<key>.yaml`` into ``output``; return their paths.

    Example:
        >>> paths = write_examples("/tmp/usecases", count=8)  # doctest: +SKIP
        >>> len(paths)
        8
    """
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for document in example_specs(count, seed=seed, rows=rows):
        path = folder / f"{document['key']}.yaml"
        atomic_write_text(path, "# Generated by `efimero usecase generate-examples`.\n"
                          + yaml.safe_dump(document, sort_keys=False))
        paths.append(path)
    return paths
